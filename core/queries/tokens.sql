-- API tokens: created, listed, revoked, and looked up by the hash of what a client sent.

-- name: create
INSERT INTO tokens (name, role, hash) VALUES ($1, $2, $3) RETURNING id;

-- name: list
SELECT id, name, role, created, revoked FROM tokens ORDER BY id;

-- name: revoke
UPDATE tokens SET revoked = corral_epoch() WHERE id = $1 AND revoked IS NULL RETURNING id;

-- name: known
SELECT 1 FROM tokens WHERE id = $1;

-- name: identify
SELECT name, role FROM tokens WHERE hash = $1 AND revoked IS NULL;

-- name: required
-- once any token was created, every request needs one (revoking them all does not open
-- the server again)
SELECT EXISTS (SELECT 1 FROM tokens);
