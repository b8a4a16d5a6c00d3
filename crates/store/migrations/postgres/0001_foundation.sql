-- Calyx foundation schema for PostgreSQL: organizations, APIs, clients, client grants,
-- signing keys. Times are Unix seconds (BIGINT). Secrets are stored only as keyed hashes.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- One row; every write to the tables below bumps it (triggers), and servers poll it to know
-- when to drop their caches and reload keys.
CREATE TABLE change_seq (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL
);
INSERT INTO change_seq (id, seq) VALUES (1, 0);

CREATE TABLE orgs (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE apis (
    id                       TEXT PRIMARY KEY,
    audience                 TEXT NOT NULL UNIQUE,
    name                     TEXT NOT NULL,
    scopes                   TEXT NOT NULL,
    alg                      TEXT NOT NULL,
    token_lifetime           BIGINT NOT NULL,
    user_token_lifetime      BIGINT NOT NULL,
    delegated_token_lifetime BIGINT NOT NULL,
    refresh_token_lifetime   BIGINT NOT NULL,
    created_at               BIGINT NOT NULL
);

CREATE TABLE clients (
    id                         TEXT PRIMARY KEY,
    org_id                     TEXT NOT NULL REFERENCES orgs (id),
    name                       TEXT NOT NULL,
    description                TEXT,
    website_uri                TEXT,
    privacy_policy_uri         TEXT,
    tos_uri                    TEXT,
    redirect_uris              TEXT NOT NULL,
    grant_types                TEXT NOT NULL,
    client_type                TEXT NOT NULL,
    secret_hash                BYTEA,
    previous_secret_hash       BYTEA,
    previous_secret_expires_at BIGINT,
    created_at                 BIGINT NOT NULL
);
CREATE INDEX clients_org ON clients (org_id);

CREATE TABLE client_grants (
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    api_id     TEXT NOT NULL REFERENCES apis (id) ON DELETE CASCADE,
    scopes     TEXT NOT NULL,
    is_default BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (client_id, api_id)
);

CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    alg         TEXT NOT NULL,
    private_key BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    retires_at  BIGINT,
    -- insertion order; the newest key of an algorithm signs
    generation  BIGINT NOT NULL UNIQUE
);

CREATE FUNCTION bump_change_seq() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE change_seq SET seq = seq + 1 WHERE id = 1;
    RETURN NULL;
END;
$$;

CREATE TRIGGER apis_changed AFTER INSERT OR UPDATE OR DELETE ON apis
    FOR EACH STATEMENT EXECUTE FUNCTION bump_change_seq();
CREATE TRIGGER clients_changed AFTER INSERT OR UPDATE OR DELETE ON clients
    FOR EACH STATEMENT EXECUTE FUNCTION bump_change_seq();
CREATE TRIGGER grants_changed AFTER INSERT OR UPDATE OR DELETE ON client_grants
    FOR EACH STATEMENT EXECUTE FUNCTION bump_change_seq();
CREATE TRIGGER keys_changed AFTER INSERT OR UPDATE OR DELETE ON signing_keys
    FOR EACH STATEMENT EXECUTE FUNCTION bump_change_seq();
