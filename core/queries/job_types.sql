-- Job types and their revisions (migrations/0006_job_types.sql).

-- name: insert_type
-- a new (name, version), or nothing when it exists (the caller then edits it)
INSERT INTO job_types (name, version, docker_image, manifest, configuration, secrets,
                       icon_code, is_active, is_paused, is_published, max_scheduled,
                       deprecated, paused)
VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7, $8, $9, $10, $11,
        CASE WHEN NOT $8 THEN now() END, CASE WHEN $9 THEN now() END)
ON CONFLICT (name, version) DO NOTHING
RETURNING id;

-- name: lock_type
SELECT * FROM job_types WHERE name = $1 AND version = $2 FOR UPDATE;

-- name: update_type
-- every mutable column of $1 as the caller computed it; `deprecated` and `paused` record
-- when the flags last turned; $11: the manifest was given again, a new revision
UPDATE job_types
   SET docker_image = $2, manifest = $3::jsonb, configuration = $4::jsonb, secrets = $5,
       icon_code = $6, is_published = $7, max_scheduled = $8,
       deprecated = CASE WHEN $9 = is_active THEN deprecated
                         WHEN $9 THEN NULL ELSE now() END,
       is_active = $9,
       paused = CASE WHEN $10 = is_paused THEN paused
                     WHEN $10 THEN now() ELSE NULL END,
       is_paused = $10,
       revision_num = revision_num + CASE WHEN $11 THEN 1 ELSE 0 END,
       last_modified = now()
 WHERE id = $1
RETURNING revision_num;

-- name: insert_revision
INSERT INTO job_type_revisions (job_type_id, revision_num, manifest, docker_image)
VALUES ($1, $2, $3::jsonb, $4);

-- name: select_rows
-- the list rows of every job type: what the lists show, and what they filter and sort on
SELECT id, name, version, manifest -> 'job' ->> 'title' AS title,
       manifest -> 'job' ->> 'description' AS description,
       coalesce(ARRAY(SELECT jsonb_array_elements_text(manifest -> 'job' -> 'tags')), '{}')
           AS tags,
       icon_code, is_active, is_system, is_paused, is_published, max_scheduled, max_tries,
       revision_num, docker_image, created, deprecated, paused, last_modified
  FROM job_types
 WHERE ($1::text IS NULL OR name = $1);

-- name: select_details
SELECT id, name, version, manifest -> 'job' ->> 'title' AS title,
       manifest -> 'job' ->> 'description' AS description,
       coalesce(ARRAY(SELECT jsonb_array_elements_text(manifest -> 'job' -> 'tags')), '{}')
           AS tags,
       icon_code, is_active, is_system, is_paused, is_published, max_scheduled, max_tries,
       revision_num, docker_image, created, deprecated, paused, last_modified,
       manifest, configuration
  FROM job_types
 WHERE name = $1 AND version = $2;

-- name: select_revisions
-- the revisions of one type, newest first; with $2, that one only
SELECT r.id, r.job_type_id, r.revision_num, r.docker_image, r.created, r.manifest
  FROM job_type_revisions r
 WHERE r.job_type_id = $1 AND ($2::integer IS NULL OR r.revision_num = $2)
 ORDER BY r.revision_num DESC;

-- name: select_type_id
SELECT id FROM job_types WHERE name = $1 AND version = $2;

-- name: lock_type_by_id
-- a type and its current revision, locked: its first job makes its group
SELECT t.*, r.id AS revision_id
  FROM job_types t JOIN job_type_revisions r
    ON r.job_type_id = t.id AND r.revision_num = t.revision_num
 WHERE t.id = $1
   FOR UPDATE OF t;

-- name: set_group
UPDATE job_types SET group_id = $2 WHERE id = $1;

-- name: group_exists
SELECT EXISTS (SELECT 1 FROM jobs WHERE id = $1 AND command = '');

-- name: set_environment
-- a typed job's environment, once its id (in OUTPUT_DIR) is known
UPDATE jobs SET environment = $2 WHERE id = $1;

-- name: select_secrets
-- the sealed secret settings of the types the job type revisions $1 belong to
SELECT r.id AS revision_id, t.secrets
  FROM job_type_revisions r JOIN job_types t ON t.id = r.job_type_id
 WHERE r.id = ANY ($1::bigint[]) AND t.secrets IS NOT NULL;

-- name: upsert_errors
-- the errors a manifest names ($2: name, title, description, category), for type name $1
INSERT INTO job_type_errors (job_type_name, name, title, description, category)
SELECT $1, e.name, coalesce(e.title, e.name), coalesce(e.description, ''),
       CASE WHEN e.category = 'data' THEN 'DATA' ELSE 'ALGORITHM' END
  FROM jsonb_to_recordset($2::jsonb) AS e (name text, title text, description text,
                                           category text)
    ON CONFLICT ((coalesce(job_type_name, '')), name) DO UPDATE
   SET title = excluded.title, description = excluded.description,
       category = excluded.category, last_modified = now();

-- name: select_typed_jobs
-- jobs of the types $1, type names $2, ids $3, states $4 (job_view's, PAUSED included)
-- and error categories $5 (each filter: any when empty), the most recently changed
-- first, rows $6 to $6 + $7; `total` counts every match
SELECT *, count(*) OVER () AS total
  FROM typed_job_view
 WHERE (cardinality($1::integer[]) = 0 OR type_id = ANY ($1))
   AND (cardinality($2::text[]) = 0 OR type_name = ANY ($2))
   AND (cardinality($3::bigint[]) = 0 OR id = ANY ($3))
   AND (cardinality($4::text[]) = 0 OR state = ANY ($4))
   AND (cardinality($5::text[]) = 0 OR error_category = ANY ($5))
 ORDER BY last_modified DESC, id DESC
OFFSET $6 LIMIT $7;

-- name: select_status_counts
-- per job type, its jobs by (state, error category): those whose state last changed
-- between $1 and $2 (NULL: now), and every running one; with the latest change of each
SELECT type_id, state, error_category, count(*) AS count, max(last_modified) AS most_recent
  FROM typed_job_view
 WHERE state = 'WORKING' OR (last_modified >= $1 AND ($2::timestamptz IS NULL OR last_modified <= $2))
 GROUP BY type_id, state, error_category;

-- name: select_waiting_counts
-- per job type, its jobs in state $1, and the earliest of $2 (`created_at` or `started`)
SELECT type_id, count(*) AS count,
       min(CASE WHEN $2 = 'started' THEN started ELSE created_at END) AS since
  FROM typed_job_view
 WHERE state = $1
 GROUP BY type_id;

-- name: select_system_failures
-- per job type and error, its jobs failed with a SYSTEM error
SELECT type_id, error_id, count(*) AS count, min(last_modified) AS first_error,
       max(last_modified) AS last_error
  FROM typed_job_view
 WHERE state = 'ERROR' AND error_category = 'SYSTEM'
 GROUP BY type_id, error_id;

-- name: select_errors
SELECT id, name, title, description, job_type_name, category, is_builtin,
       should_be_retried, created, last_modified
  FROM job_type_errors WHERE id = ANY ($1::integer[]);
