-- Client groups made through AWE's /cgroup (docs/awe.md, "Client groups and tokens"): a
-- group's token admits AWE clients into it. Groups that clients join without a token are
-- only names in their profiles and have no row here.
CREATE TABLE client_groups (
    id uuid PRIMARY KEY,
    name text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9_.-]+$' AND length(name) <= 255),
    -- the SHA-256 of the token, which is shown once (as API tokens are, migration 0004);
    -- NULL once the token was deleted, until a new one is made
    token_hash bytea UNIQUE,
    created_on timestamptz NOT NULL DEFAULT now(),
    -- past it the token admits nobody (AWE: ten years after creation)
    expiration timestamptz NOT NULL,
    last_modified timestamptz NOT NULL DEFAULT now()
);
