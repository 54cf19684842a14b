-- API tokens. Only a SHA-256 of each token is kept: a token is 32 random bytes, so a
-- slow password hash would add nothing, and a leaked table opens nothing.
CREATE TABLE tokens (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- who holds it: a user's name (their jobs' `user`), a worker's name, an admin
    name text NOT NULL CHECK (name <> '' AND length(name) <= 255),
    role text NOT NULL CHECK (role IN ('admin', 'user', 'worker')),
    hash bytea NOT NULL UNIQUE,
    created double precision NOT NULL DEFAULT corral_epoch(),
    -- set when revoked; the row stays, so the server never falls back to running open
    revoked double precision
);
