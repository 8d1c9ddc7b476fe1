-- The HTTP API and webhooks: campaign start/pause/stop decided at run time (it outlives a
-- restart and wins over the YAML's `active`), and the outbox of webhook deliveries (each one
-- survives a restart and a database outage: it goes through the engine's write queue).

CREATE TABLE campaign_control (
    name  text PRIMARY KEY,                -- the campaign (YAML) it applies to
    state text NOT NULL CHECK (state IN ('running', 'paused', 'stopped')),
    at    timestamptz NOT NULL,
    by    text NOT NULL DEFAULT ''         -- who: api (and the token's position), cli, ...
);

-- One row per (event, webhook): the exact body signed and sent, and how delivery went.
CREATE TABLE webhook_outbox (
    id           uuid PRIMARY KEY,         -- the delivery id (X-Callcenter-Delivery; the body's id)
    instance     text NOT NULL,            -- the engine that owes the delivery
    url          text NOT NULL,
    kind         text NOT NULL,            -- call.offered, call.ended, ...
    body         text NOT NULL,
    created_at   timestamptz NOT NULL,
    attempts     integer NOT NULL DEFAULT 0,
    next_at      timestamptz NOT NULL,     -- the next try
    last_status  integer,                  -- the receiver's last HTTP status (NULL: no answer)
    last_error   text,
    delivered_at timestamptz,
    failed_at    timestamptz               -- given up (max attempts, or a 4xx that retrying cannot fix)
);
CREATE INDEX webhook_outbox_pending ON webhook_outbox (instance, next_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX webhook_outbox_created ON webhook_outbox (created_at);
