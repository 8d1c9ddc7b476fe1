-- IVR: the path each call took, the variables routing used, survey answers; the tree version a
-- call ran on; voicemail is a kind of recording; callbacks may come from an IVR (no queue yet).

ALTER TABLE calls ADD COLUMN ivr_tree text, ADD COLUMN ivr_version text;

-- Every node a call entered and every input it gave, in order.
CREATE TABLE ivr_steps (
    id      uuid PRIMARY KEY,
    call_id uuid NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    seq     integer NOT NULL,           -- the step's place in the call's path (several share a moment)
    at      timestamptz NOT NULL,
    tree    text NOT NULL,
    version text NOT NULL,
    node    text NOT NULL,
    verb    text NOT NULL,
    input   text NOT NULL DEFAULT '',   -- the keys pressed (or typed digits)
    result  text NOT NULL DEFAULT ''    -- where it led: a node, invalid, timeout, ok tier=gold, ...
);
CREATE INDEX ivr_steps_call ON ivr_steps (call_id, seq);

-- The call's variables when the IVR handed it on (what the route and the agent could use).
CREATE TABLE call_variables (
    call_id uuid NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    name    text NOT NULL,
    value   text NOT NULL,
    PRIMARY KEY (call_id, name)
);

CREATE TABLE survey_answers (
    call_id  uuid NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    question text NOT NULL,
    answer   integer CHECK (answer BETWEEN 1 AND 5),   -- NULL: no answer
    at       timestamptz NOT NULL,
    PRIMARY KEY (call_id, question)
);

ALTER TABLE recordings ADD COLUMN kind text NOT NULL DEFAULT 'call' CHECK (kind IN ('call', 'voicemail'));

ALTER TABLE callbacks ALTER COLUMN queue DROP NOT NULL;
ALTER TABLE callbacks ADD COLUMN source text NOT NULL DEFAULT 'queue' CHECK (source IN ('queue', 'ivr'));
