-- Stronger clients: proof-of-possession, key-based client authentication, pushed
-- authorization requests and token quotas.

-- A client's security policy as one JSON object (see calyx_core::model::ClientPolicy): how it
-- authenticates (private_key_jwt, tls_client_auth, self_signed_tls_client_auth) with its keys
-- or certificate subject, and whether it must use DPoP or PAR. Read with the client, never
-- queried by its members, so one column instead of seven.
ALTER TABLE clients ADD COLUMN policy TEXT NOT NULL DEFAULT '{}';

-- The RFC 7638 thumbprint of the DPoP key a public client's sign-in is bound to: its refresh
-- tokens are accepted only with a proof by that key (RFC 9449 §5).
ALTER TABLE families ADD COLUMN dpop_jkt TEXT;

-- Tokens per hour and per day; NULL is no quota.
ALTER TABLE clients ADD COLUMN tokens_per_hour INTEGER;
ALTER TABLE clients ADD COLUMN tokens_per_day INTEGER;
ALTER TABLE orgs ADD COLUMN tokens_per_hour INTEGER;
ALTER TABLE orgs ADD COLUMN tokens_per_day INTEGER;

-- Identifiers that may be used once: the jti of DPoP proofs (RFC 9449 §11.1) and of client
-- assertions (RFC 7523 §3). The key is a hash of the kind, the signer and the jti, so its size
-- does not depend on what a client sends; a row lives as long as the JWT could be accepted.
CREATE TABLE used_jtis (
    key        BLOB PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE INDEX used_jtis_expires ON used_jtis (expires_at);

-- Pushed authorization requests (RFC 9126): the keyed hash of the request_uri's secret part,
-- the client that pushed it and its parameters, used once by /authorize.
CREATE TABLE pushed_requests (
    uri_hash   BLOB PRIMARY KEY,
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    params     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX pushed_requests_expires ON pushed_requests (expires_at);

-- Tokens issued per quota subject ('client:ID' or 'org:ID') and window (the window's start:
-- an hour or a day), counted by every node.
CREATE TABLE quota_counts (
    subject      TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    window_secs  INTEGER NOT NULL,
    count        INTEGER NOT NULL,
    PRIMARY KEY (subject, window_secs, window_start)
);
CREATE INDEX quota_counts_window ON quota_counts (window_start);
