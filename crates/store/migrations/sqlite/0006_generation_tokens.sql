-- Generation refresh tokens: a family's row holds its current refresh token (generation,
-- keyed hash, times, and the token sealed for the reuse leeway), and each rotation replaces
-- them in place. Storage then grows with the live sign-ins, not with the rotations.
-- refresh_tokens keeps the tokens of the earlier format until they expire: rotating one moves
-- its family to generation tokens.

ALTER TABLE families ADD COLUMN token_generation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE families ADD COLUMN token_hash BLOB;
ALTER TABLE families ADD COLUMN token_sealed BLOB;
ALTER TABLE families ADD COLUMN token_issued_at INTEGER;
ALTER TABLE families ADD COLUMN token_expires_at INTEGER;

-- Families from before: their newest legacy token's times, which the purge judges them by.
UPDATE families SET
    token_issued_at = (SELECT MAX(r.created_at) FROM refresh_tokens r WHERE r.family_id = families.id),
    token_expires_at = (SELECT MAX(r.expires_at) FROM refresh_tokens r WHERE r.family_id = families.id);
