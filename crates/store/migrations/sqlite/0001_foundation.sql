-- Calyx foundation schema: organizations, APIs, clients, client grants, signing keys.
-- Times are Unix seconds. Secrets are stored only as keyed hashes (BLOB).

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- One row; every write to the tables below bumps it (triggers), and servers poll it to know
-- when to drop their caches and reload keys.
CREATE TABLE change_seq (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
);
INSERT INTO change_seq (id, seq) VALUES (1, 0);

CREATE TABLE orgs (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE apis (
    id                       TEXT PRIMARY KEY,
    audience                 TEXT NOT NULL UNIQUE,
    name                     TEXT NOT NULL,
    scopes                   TEXT NOT NULL,
    alg                      TEXT NOT NULL,
    token_lifetime           INTEGER NOT NULL,
    user_token_lifetime      INTEGER NOT NULL,
    delegated_token_lifetime INTEGER NOT NULL,
    refresh_token_lifetime   INTEGER NOT NULL,
    created_at               INTEGER NOT NULL
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
    secret_hash                BLOB,
    previous_secret_hash       BLOB,
    previous_secret_expires_at INTEGER,
    created_at                 INTEGER NOT NULL
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
    private_key BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    retires_at  INTEGER,
    -- insertion order; the newest key of an algorithm signs
    generation  INTEGER NOT NULL UNIQUE
);

CREATE TRIGGER apis_ins AFTER INSERT ON apis BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER apis_upd AFTER UPDATE ON apis BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER apis_del AFTER DELETE ON apis BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER clients_ins AFTER INSERT ON clients BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER clients_upd AFTER UPDATE ON clients BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER clients_del AFTER DELETE ON clients BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER grants_ins AFTER INSERT ON client_grants BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER grants_upd AFTER UPDATE ON client_grants BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER grants_del AFTER DELETE ON client_grants BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER keys_ins AFTER INSERT ON signing_keys BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER keys_upd AFTER UPDATE ON signing_keys BEGIN UPDATE change_seq SET seq = seq + 1; END;
CREATE TRIGGER keys_del AFTER DELETE ON signing_keys BEGIN UPDATE change_seq SET seq = seq + 1; END;
