-- Workflows (the AWE face's jobs, usable by any face): a workflow is a root group, each of
-- its tasks a child group, each workunit a leaf. The document as submitted, and what the
-- face keeps of a job beyond the tree, live here; states come from the tree.

CREATE TABLE workflows (
    job_id bigint PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    -- AWE's job id: a v4 UUID made by Corral
    id uuid NOT NULL UNIQUE,
    -- the workflow's info and tasks as the face shows them (inputs and outputs as lists)
    document jsonb NOT NULL,
    -- what overrides the tree's state: deleted, failed-permanent (NULL: none)
    state text CHECK (state IN ('deleted', 'failed-permanent')),
    error jsonb,
    resumed integer NOT NULL DEFAULT 0,
    submitted double precision NOT NULL DEFAULT corral_epoch(),
    updated double precision NOT NULL DEFAULT corral_epoch(),
    completed double precision,
    expiration double precision
);
CREATE INDEX workflows_submitted ON workflows (submitted DESC, job_id DESC);

CREATE TABLE workflow_tasks (
    group_id bigint PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    workflow_id bigint NOT NULL REFERENCES workflows (job_id) ON DELETE CASCADE,
    -- the task id the document gives ("0", "1", ...)
    name text NOT NULL,
    position integer NOT NULL,
    totalwork integer NOT NULL CHECK (totalwork >= 1),
    UNIQUE (workflow_id, name)
);

-- the AWE server's identity: made once, the same for every server process and restart
-- (AWE workers discard their work when it changes)
CREATE TABLE awe_server (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    uuid uuid NOT NULL,
    queue_suspended boolean NOT NULL DEFAULT false
);
INSERT INTO awe_server (uuid) VALUES (gen_random_uuid());

-- a workunit: which task of which workflow a leaf is, and its rank
CREATE TABLE workflow_units (
    job_id bigint PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    workflow_id bigint NOT NULL REFERENCES workflows (job_id) ON DELETE CASCADE,
    task text NOT NULL,
    rank integer NOT NULL,
    UNIQUE (workflow_id, task, rank)
);

-- what a workunit's last report carried: stdout, stderr, worknotes
CREATE TABLE workflow_reports (
    job_id bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('stdout', 'stderr', 'worknotes')),
    text text NOT NULL,
    PRIMARY KEY (job_id, kind)
);

-- the profiles AWE clients registered with; each client is a worker of its name
CREATE TABLE workflow_clients (
    name text PRIMARY KEY,
    profile jsonb NOT NULL,
    registered double precision NOT NULL DEFAULT corral_epoch()
);
