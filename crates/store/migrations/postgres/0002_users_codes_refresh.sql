-- Users, authorization codes, grant families, refresh tokens, revoked access tokens (PostgreSQL).

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES orgs (id),
    username      TEXT,
    password_hash TEXT,
    external_id   TEXT,
    email         TEXT,
    created_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_username ON users (username);
CREATE UNIQUE INDEX users_org_external_id ON users (org_id, external_id);
CREATE INDEX users_org ON users (org_id);

CREATE TABLE user_scopes (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    api_id  TEXT NOT NULL REFERENCES apis (id) ON DELETE CASCADE,
    scopes  TEXT NOT NULL,
    PRIMARY KEY (user_id, api_id)
);

CREATE TABLE families (
    id         TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    org_id     TEXT NOT NULL,
    api_id     TEXT NOT NULL,
    scope      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX families_user ON families (user_id);

-- Codes and refresh tokens are stored only as keyed hashes.
CREATE TABLE auth_codes (
    code_hash          BYTEA PRIMARY KEY,
    family_id          TEXT NOT NULL,
    client_id          TEXT NOT NULL,
    user_id            TEXT NOT NULL,
    api_id             TEXT NOT NULL,
    scope              TEXT NOT NULL,
    redirect_uri       TEXT NOT NULL,
    redirect_uri_given BOOLEAN NOT NULL,
    code_challenge     TEXT,
    created_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    used_at            BIGINT
);

CREATE TABLE refresh_tokens (
    token_hash       BYTEA PRIMARY KEY,
    family_id        TEXT NOT NULL REFERENCES families (id),
    scope            TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    used_at          BIGINT,
    -- the successor, sealed; written only when a reuse leeway is configured
    successor_hash   BYTEA,
    successor_sealed BYTEA
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE revoked_jtis (
    jti        TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
