-- Signing keys gain a "next" state: a key is published in the JWKS before it signs, so a
-- resource server that fetched the JWKS before a rotation already holds the key that signs
-- after it. `promoted_at` is when a key started signing; NULL marks the next key.
ALTER TABLE signing_keys ADD COLUMN promoted_at INTEGER;
UPDATE signing_keys SET promoted_at = created_at;

-- A username is unique within its organization, not across the deployment: one
-- organization must not learn from a refused registration that another has a user "jane".
DROP INDEX users_username;
CREATE UNIQUE INDEX users_org_username ON users (org_id, username);
CREATE INDEX users_username ON users (username);
