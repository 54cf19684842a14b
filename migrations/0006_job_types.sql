-- Job types: versioned templates of leaf jobs, each a Seed manifest with a configuration
-- (Scale's v6 job types; any face may create jobs of a type).

CREATE TABLE job_types (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL CHECK (name ~ '^[a-zA-Z0-9-]+$'),
    version text NOT NULL CHECK (version <> ''),
    -- the current revision: a new one each time the manifest is given again
    revision_num integer NOT NULL DEFAULT 1 CHECK (revision_num >= 1),
    docker_image text NOT NULL DEFAULT '',
    -- the Seed manifest, its defaults filled in
    manifest jsonb NOT NULL,
    -- the configuration without the values of secret settings ...
    configuration jsonb NOT NULL,
    -- ... which are kept apart, encrypted (core/secrets.py), NULL when there are none
    secrets bytea,
    icon_code text,
    is_active boolean NOT NULL DEFAULT true,
    is_paused boolean NOT NULL DEFAULT false,
    is_system boolean NOT NULL DEFAULT false,
    is_published boolean NOT NULL DEFAULT false,
    -- jobs of the type running at once, farm-wide; NULL (or 0): no limit
    max_scheduled integer CHECK (max_scheduled >= 0),
    -- runs of a job at most, when its errors may be retried
    max_tries integer NOT NULL DEFAULT 3 CHECK (max_tries >= 1),
    created timestamptz NOT NULL DEFAULT now(),
    -- when is_active last became false, when is_paused last became true
    deprecated timestamptz,
    paused timestamptz,
    last_modified timestamptz NOT NULL DEFAULT now(),
    UNIQUE (name, version)
);

-- a row per manifest given: what the jobs made from it ran
CREATE TABLE job_type_revisions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_type_id integer NOT NULL REFERENCES job_types (id) ON DELETE CASCADE,
    revision_num integer NOT NULL,
    manifest jsonb NOT NULL,
    docker_image text NOT NULL,
    created timestamptz NOT NULL DEFAULT now(),
    UNIQUE (job_type_id, revision_num)
);
