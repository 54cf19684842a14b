-- Jobs made from a job type: each keeps the revision it was made from, and the jobs of a
-- type hang under a group of their own.

ALTER TABLE jobs ADD COLUMN job_type_revision_id bigint REFERENCES job_type_revisions (id);
-- the jobs of a type, for its lists and statistics
CREATE INDEX jobs_job_type_revision ON jobs (job_type_revision_id, id)
    WHERE job_type_revision_id IS NOT NULL;

-- the group the type's jobs are created under, made with the first of them, and again
-- when a wrangler has deleted it. No foreign key: it would add a trigger call to every
-- job deleted, for a table of a few hundred rows.
ALTER TABLE job_types ADD COLUMN group_id bigint;

-- The errors a job of a type can end with: those its manifest names (`errors[]`, by
-- exit code), kept per (type name, error name) and shared by its versions, and the
-- built-in ones of every type (job_type_name NULL).
CREATE TABLE job_type_errors (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_type_name text,
    name text NOT NULL,
    title text NOT NULL DEFAULT '',
    description text NOT NULL DEFAULT '',
    category text NOT NULL CHECK (category IN ('SYSTEM', 'ALGORITHM', 'DATA')),
    is_builtin boolean NOT NULL DEFAULT false,
    should_be_retried boolean NOT NULL DEFAULT false,
    created timestamptz NOT NULL DEFAULT now(),
    last_modified timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX job_type_errors_name ON job_type_errors (coalesce(job_type_name, ''), name);

INSERT INTO job_type_errors (job_type_name, name, title, description, category, is_builtin,
                             should_be_retried)
VALUES (NULL, 'algorithm-unknown', 'Algorithm Unknown',
        'The algorithm exited with a code its manifest does not name.', 'ALGORITHM', true, false),
       (NULL, 'timeout', 'Timeout', 'The job ran past its timeout.', 'ALGORITHM', true, false),
       (NULL, 'node-lost', 'Node Lost', 'The node running the job was lost.', 'SYSTEM', true,
        true);

-- Why a run ends when its worker is lost (core/runs.py and core/workers.py write these
-- reasons): silent past the worker timeout, no longer reporting the run, restarted.
CREATE FUNCTION corral_lost_reasons() RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY['worker lost', 'its worker stopped reporting it', 'worker restarted']
$$;

-- The error a job of a type ended with, by name: none unless it is in ERROR; from its last
-- run, `node-lost` when its worker was lost, `timeout` past its timeout, else the error
-- its manifest names for the exit code, else `algorithm-unknown`.
CREATE FUNCTION corral_job_error(manifest jsonb, job_state text, run_state text,
                                 exit_code bigint, reason text) RETURNS text
    LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN job_state <> 'ERROR' THEN NULL
        WHEN reason = ANY (corral_lost_reasons()) THEN 'node-lost'
        WHEN run_state = 'TIMEOUT' THEN 'timeout'
        ELSE coalesce((SELECT e ->> 'name'
                         FROM jsonb_array_elements(coalesce(manifest -> 'job' -> 'errors',
                                                            '[]')) e
                        WHERE (e ->> 'code')::numeric = exit_code
                        LIMIT 1), 'algorithm-unknown')
    END
$$;

-- Jobs made from job types as the faces show them: their type and revision, their last
-- run, the error they ended with and its category, and when their state last changed.
CREATE VIEW typed_job_view AS
WITH typed AS (
    SELECT j.id, v.state, j.created_at, j.worker, j.meta, r.id AS revision_id,
           r.revision_num, t.id AS type_id, t.name AS type_name, t.max_tries, r.manifest,
           le.state AS run_state, le.exit_code, le.reason,
           to_timestamp(le.start) AS started,
           CASE WHEN le.state <> 'WORKING' THEN to_timestamp(le.start + le.duration) END
               AS ended,
           (SELECT count(*) FROM events e WHERE e.job_id = j.id) AS num_exes
      FROM jobs j
      JOIN job_view v ON v.id = j.id
      JOIN job_type_revisions r ON r.id = j.job_type_revision_id
      JOIN job_types t ON t.id = r.job_type_id
      LEFT JOIN LATERAL (SELECT e.state, e.exit_code, e.reason, e.start, e.duration
                           FROM events e WHERE e.job_id = j.id
                          ORDER BY e.id DESC LIMIT 1) le ON true
     WHERE j.job_type_revision_id IS NOT NULL
), errored AS (
    SELECT typed.*,
           corral_job_error(manifest, state, run_state, exit_code, reason) AS error_name
      FROM typed
)
SELECT errored.*, x.id AS error_id, x.title AS error_title,
       x.description AS error_description, x.category AS error_category,
       x.job_type_name AS error_job_type_name, x.is_builtin AS error_is_builtin,
       x.should_be_retried AS error_should_be_retried, x.created AS error_created,
       x.last_modified AS error_last_modified,
       greatest(created_at, started, ended) AS last_modified
  FROM errored
  -- the type's own error of that name before a built-in one
  LEFT JOIN LATERAL (SELECT * FROM job_type_errors x
                      WHERE x.name = errored.error_name
                        AND (x.job_type_name = errored.type_name OR x.job_type_name IS NULL)
                      ORDER BY x.job_type_name IS NULL LIMIT 1) x ON true;
