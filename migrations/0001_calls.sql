-- The record of calls. Applied by `callcenter migrate` (or at start-up), inside one transaction.
-- Timestamps are timestamptz; ids are made by the engine (uuid), so a write replayed after a
-- database outage lands once.

CREATE TABLE calls (
    id                uuid PRIMARY KEY,
    channel_id        text NOT NULL,                 -- Asterisk channel id of the first leg
    direction         text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    caller_number     text NOT NULL DEFAULT '',      -- as Asterisk saw it; stored verbatim
    caller_name       text NOT NULL DEFAULT '',
    dialed_number     text NOT NULL DEFAULT '',
    started_at        timestamptz NOT NULL,
    answered_at       timestamptz,
    ended_at          timestamptz,
    hangup_cause      integer,                       -- Q.850 cause from ChannelDestroyed
    hangup_cause_text text,
    ended_by          text CHECK (ended_by IN ('caller', 'engine', 'system')),
    CHECK (ended_at IS NULL OR ended_by IS NOT NULL)
);
CREATE INDEX calls_started_at ON calls (started_at);
CREATE INDEX calls_caller_number ON calls (caller_number, started_at);
CREATE INDEX calls_open ON calls (channel_id) WHERE ended_at IS NULL;

-- What happened to a call, line by line (adopted after a restart, a timeout, a failed request...).
-- Later capabilities add their own tables (IVR path, queue waits); this is the catch-all history.
CREATE TABLE call_events (
    id      uuid PRIMARY KEY,
    call_id uuid NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    at      timestamptz NOT NULL,
    kind    text NOT NULL,
    detail  text NOT NULL DEFAULT ''
);
CREATE INDEX call_events_call ON call_events (call_id, at);

-- Recording metadata (the files live in Asterisk's recording spool).
CREATE TABLE recordings (
    id               uuid PRIMARY KEY,
    call_id          uuid REFERENCES calls (id) ON DELETE SET NULL,
    name             text NOT NULL,                  -- Asterisk's stored recording name
    format           text NOT NULL,                  -- wav, gsm, ...
    path             text,
    direction        text CHECK (direction IN ('inbound', 'outbound')),
    agent_id         text,
    queue            text,
    started_at       timestamptz,
    ended_at         timestamptz,
    duration_seconds double precision,               -- from the file header, not Asterisk's rounding
    size_bytes       bigint,
    created_at       timestamptz NOT NULL DEFAULT now(),
    purged_at        timestamptz                     -- file deleted by retention; the row stays
);
CREATE INDEX recordings_call ON recordings (call_id);
CREATE INDEX recordings_created_at ON recordings (created_at);
