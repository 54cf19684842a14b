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
