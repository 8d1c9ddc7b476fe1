-- The ACD's record: agent states, queue entries, offers (with the routing reason), dispositions,
-- callbacks. Every write is idempotent (ids made by the engine, "first value wins" updates), so a
-- write replayed after a database outage lands once.

ALTER TABLE calls DROP CONSTRAINT calls_ended_by_check;
ALTER TABLE calls ADD CONSTRAINT calls_ended_by_check CHECK (ended_by IN ('caller', 'agent', 'engine', 'system'));

-- Every agent state change: the history reports are computed from.
CREATE TABLE agent_states (
    id       uuid PRIMARY KEY,
    agent_id text NOT NULL,
    state    text NOT NULL CHECK (state IN ('logged_out', 'available', 'reserved', 'on_call', 'wrap_up', 'paused')),
    reason   text,                    -- the pause reason (break, lunch, no-answer, ...)
    call_id  uuid,                    -- the call, while reserved / on a call / in wrap-up
    at       timestamptz NOT NULL
);
CREATE INDEX agent_states_agent_at ON agent_states (agent_id, at);
CREATE INDEX agent_states_at ON agent_states (at);

-- Where each agent is now: what a restart restores (agents stay logged in, in their state).
CREATE TABLE agents_current (
    agent_id    text PRIMARY KEY,
    state       text NOT NULL,
    reason      text,
    call_id     uuid,
    queues      text[] NOT NULL DEFAULT '{}',
    endpoint    text NOT NULL DEFAULT '',
    since       timestamptz NOT NULL,
    idle_since  timestamptz,
    calls_taken integer NOT NULL DEFAULT 0,
    pending     text,
    updated_at  timestamptz NOT NULL
);

-- One row per stay of a call in a queue (an overflow makes a second row in the next queue).
CREATE TABLE queue_entries (
    id           uuid PRIMARY KEY,
    call_id      uuid NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    queue        text NOT NULL,
    priority     integer NOT NULL DEFAULT 0,
    entered_at   timestamptz NOT NULL,  -- entered this queue
    line_since   timestamptz NOT NULL,  -- its place in line (first queue entered)
    left_at      timestamptz,
    outcome      text CHECK (outcome IN ('answered', 'abandoned', 'overflow', 'unroutable', 'callback', 'lost')),
    wait_seconds double precision,      -- entered_at to left_at
    agent_id     text
);
CREATE INDEX queue_entries_queue_entered ON queue_entries (queue, entered_at);
CREATE INDEX queue_entries_open ON queue_entries (call_id) WHERE left_at IS NULL;

-- Every offer of a call to an agent, and why that agent: the routing reason log.
CREATE TABLE queue_offers (
    id             uuid PRIMARY KEY,
    call_id        uuid NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    queue          text NOT NULL,
    agent_id       text NOT NULL,
    offered_at     timestamptz NOT NULL,
    strategy       text NOT NULL,
    requirement    jsonb NOT NULL,      -- {"billing": 5}: the skills the call needed then
    expansion_step integer NOT NULL,    -- 0: the queue's own requirement; k: the k-th expansion
    candidates     jsonb NOT NULL,      -- [["1002", 65], ["1001", 60]]: eligible agents, best first
    reason         text NOT NULL,       -- the same, in one readable line
    ended_at       timestamptz,
    result         text                 -- answered | no-answer | busy | rejected | unreachable | timeout | withdrawn
);
CREATE INDEX queue_offers_call ON queue_offers (call_id, offered_at);
CREATE INDEX queue_offers_agent ON queue_offers (agent_id, offered_at);

-- "Why did this call go where it went": one line per offer, oldest first.
CREATE VIEW routing_log AS
SELECT o.offered_at, c.caller_number, o.call_id, o.queue, o.agent_id, o.result, o.reason
FROM queue_offers o JOIN calls c ON c.id = o.call_id;

CREATE TABLE dispositions (
    id       uuid PRIMARY KEY,
    call_id  uuid REFERENCES calls (id) ON DELETE SET NULL,
    agent_id text NOT NULL,
    code     text NOT NULL,              -- what the agent keyed
    name     text NOT NULL,              -- what it means (config: dispositions)
    at       timestamptz NOT NULL
);
CREATE INDEX dispositions_call ON dispositions (call_id);

CREATE TABLE callbacks (
    call_id      uuid PRIMARY KEY REFERENCES calls (id) ON DELETE CASCADE,
    queue        text NOT NULL,
    number       text NOT NULL,
    requested_at timestamptz NOT NULL,
    placed_at    timestamptz,
    agent_id     text,
    outcome      text                   -- answered | busy | no-answer | failed
);
