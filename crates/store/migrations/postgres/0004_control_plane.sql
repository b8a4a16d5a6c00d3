-- The control plane: clients can be disabled, scopes carry descriptions, and the audit log,
-- the webhook outbox and per-client hourly usage get tables. Every change that bumps the
-- change counter is also announced on the channel `calyx_change` (delivered at commit), so
-- every node drops its caches at once instead of at its next poll.

ALTER TABLE clients ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE;

-- JSON object: scope -> what it lets an application do.
ALTER TABLE apis ADD COLUMN scope_descriptions TEXT NOT NULL DEFAULT '{}';

-- Families are listed per client (operators revoke a client's tokens) as well as per user.
CREATE INDEX families_client ON families (client_id);

CREATE OR REPLACE FUNCTION bump_change_seq() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE change_seq SET seq = seq + 1 WHERE id = 1;
    PERFORM pg_notify('calyx_change', '');
    RETURN NULL;
END;
$$;

-- Append-only: rows are inserted, and deleted only by the purge after the retention.
CREATE TABLE audit_events (
    id        TEXT PRIMARY KEY,   -- increases with time: the listing cursor
    at        BIGINT NOT NULL,
    kind      TEXT NOT NULL,
    actor     TEXT NOT NULL,
    org_id    TEXT,
    client_id TEXT,
    user_id   TEXT,
    target    TEXT,
    address   TEXT,
    detail    TEXT NOT NULL       -- JSON; never a secret
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_kind ON audit_events (kind, id);
CREATE INDEX audit_events_org ON audit_events (org_id, id);
CREATE INDEX audit_events_client ON audit_events (client_id, id);
CREATE INDEX audit_events_user ON audit_events (user_id, id);

CREATE TABLE webhooks (
    id            TEXT PRIMARY KEY,
    url           TEXT NOT NULL,
    events        TEXT NOT NULL,  -- space-separated types or patterns
    secret_sealed BYTEA NOT NULL, -- sealed, not hashed: it must be recovered to sign
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL
);

-- The outbox: one row per (event, webhook), written in the event's transaction.
CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,
    webhook_id      TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id        TEXT NOT NULL,
    payload         TEXT NOT NULL,
    state           TEXT NOT NULL,  -- pending, delivered, failed
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    locked_until    BIGINT,         -- a worker's claim
    last_status     BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    delivered_at    BIGINT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, id);

-- Tokens issued per client per hour, added to by each node's periodic flush.
CREATE TABLE usage_hourly (
    client_id TEXT NOT NULL,
    hour      BIGINT NOT NULL,
    count     BIGINT NOT NULL,
    PRIMARY KEY (client_id, hour)
);

-- Named leases (one node at a time runs the purge): the holder keeps the lease until
-- `held_until`; a row, not a `meta` value, so that taking it is one conditional upsert.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    held_until BIGINT NOT NULL
);
