-- Faces for people: users get a role (console operators, organization admins), organizations
-- get entitlements (what their developers may grant their own applications), users' consents
-- are remembered, and the branding lives in `meta`, whose changes now reach every node.

ALTER TABLE users ADD COLUMN role TEXT;  -- NULL, 'operator' or 'org_admin'

CREATE TABLE org_entitlements (
    org_id TEXT NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    api_id TEXT NOT NULL REFERENCES apis (id) ON DELETE CASCADE,
    scopes TEXT NOT NULL,           -- space-separated: the most an app of the org may hold
    PRIMARY KEY (org_id, api_id)
);

CREATE TABLE consents (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    api_id     TEXT NOT NULL REFERENCES apis (id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,       -- space-separated: what the user approved
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id, api_id)
);

CREATE TRIGGER meta_changed AFTER INSERT OR UPDATE ON meta
    FOR EACH STATEMENT EXECUTE FUNCTION bump_change_seq();
