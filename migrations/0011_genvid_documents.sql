-- The Genvid face's stored documents and secrets (docs/genvid.md).

-- JSON documents by name: `genvid.settings`, `genvid.events`. `json`, not `jsonb`: the
-- text is kept as written, so a document reads back with its keys in their order.
CREATE TABLE documents (
    name text PRIMARY KEY,
    body json NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Secrets, Vault KV version 1 style: one map of names to values per id, encrypted by
-- the server with AES-256-GCM (a fresh 96-bit nonce per write, the id as associated
-- data); the key is never in the database.
CREATE TABLE genvid_secrets (
    id text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_.-]{1,128}$'),
    nonce bytea NOT NULL CHECK (length(nonce) = 12),
    ciphertext bytea NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
