-- Secrets, encrypted by the server (core/vault.py): the database sees nonces and
-- ciphertexts only.

-- name: ids
SELECT id FROM genvid_secrets ORDER BY id COLLATE "C";

-- name: count
SELECT count(*) FROM genvid_secrets;

-- name: get
SELECT nonce, ciphertext FROM genvid_secrets WHERE id = $1;

-- name: some
SELECT id, nonce, ciphertext FROM genvid_secrets WHERE id = ANY ($1::text[]);

-- name: every
SELECT id, nonce, ciphertext FROM genvid_secrets ORDER BY id COLLATE "C";

-- name: every_locked
SELECT id, nonce, ciphertext FROM genvid_secrets ORDER BY id COLLATE "C" FOR UPDATE;

-- name: put
INSERT INTO genvid_secrets (id, nonce, ciphertext) VALUES ($1, $2, $3)
ON CONFLICT (id) DO UPDATE
SET nonce = excluded.nonce, ciphertext = excluded.ciphertext, updated_at = now();

-- name: delete
DELETE FROM genvid_secrets WHERE id = $1 RETURNING id;
