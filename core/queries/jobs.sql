-- Jobs: reading the tree, creating, editing and the subtree operations.
-- Counters, group states and dependency blocking follow from the triggers of
-- migrations/0001_initial.sql; these statements only change the jobs themselves.

-- name: select_job
SELECT * FROM job_list WHERE id = $1;

-- name: select_children
-- the children of $1 (0: the roots), in id order
SELECT * FROM job_list WHERE parent = $1 ORDER BY id;

-- name: select_page
-- a keyset page of the children of $1 (0: the roots): ids after $2, at most $6 of them;
-- $3 states (none: any), $4 the user (NULL: any), $5 an ILIKE pattern for the title
-- (NULL: any), $7 affinity slots the job's own affinities must all hold (none: any; the
-- view's `affinity` is their numbers as text). The filters do not change the plan: it
-- walks jobs_parent_order from $2.
SELECT * FROM job_list
 WHERE parent = $1 AND id > $2
   AND (cardinality($3::text[]) = 0 OR state = ANY ($3::text[]))
   AND ($4::text IS NULL OR "user" = $4)
   AND ($5::text IS NULL OR title ILIKE $5)
   AND (cardinality($7::int[]) = 0 OR string_to_array(affinity, ',')::int[] @> $7::int[])
 ORDER BY id
 LIMIT $6;

-- name: select_page_desc
-- as select_page, newest first: ids below $2, walking jobs_parent_order backwards
SELECT * FROM job_list
 WHERE parent = $1 AND id < $2
   AND (cardinality($3::text[]) = 0 OR state = ANY ($3::text[]))
   AND ($4::text IS NULL OR "user" = $4)
   AND ($5::text IS NULL OR title ILIKE $5)
   AND (cardinality($7::int[]) = 0 OR string_to_array(affinity, ',')::int[] @> $7::int[])
 ORDER BY id DESC
 LIMIT $6;

-- name: select_page_sorted
-- as select_page, ordered by SORT_KEY (a job_list column) then id, both SORT_DIR, from
-- after job $2 (0, or a job no longer there: from the start) by the job's key as it is
-- now. SORT_KEY, SORT_DIR and SORT_CMP are put in by core/jobs.py from its fixed table,
-- never from a request. No index holds these orders: the group's rows that pass the
-- filters are read from jobs_parent_order and the first $6 kept (a bounded top-N sort).
SELECT * FROM job_list
 WHERE parent = $1
   AND (cardinality($3::text[]) = 0 OR state = ANY ($3::text[]))
   AND ($4::text IS NULL OR "user" = $4)
   AND ($5::text IS NULL OR title ILIKE $5)
   AND (cardinality($7::int[]) = 0 OR string_to_array(affinity, ',')::int[] @> $7::int[])
   AND (NOT EXISTS (SELECT 1 FROM jobs a WHERE a.id = $2)
        OR (SORT_KEY, id) SORT_CMP (SELECT a.SORT_KEY, a.id FROM job_list a WHERE a.id = $2))
 ORDER BY SORT_KEY SORT_DIR, id SORT_DIR
 LIMIT $6;
-- name: select_affinity_slots
-- the slots of the named affinities, for select_page's affinity filter
SELECT id FROM affinities WHERE name = ANY ($1::text[]);

-- name: select_dependencies
SELECT l.* FROM dependencies d JOIN job_list l ON l.id = d.depends_on
 WHERE d.job_id = $1 ORDER BY d.depends_on;

-- name: select_affinity_names
-- every slot's name, for the `affinity` slot numbers of job_list rows
SELECT id::text AS id, name FROM affinities;

-- name: select_dependency_ids
SELECT depends_on FROM dependencies WHERE job_id = $1 ORDER BY depends_on;

-- name: select_children_dependencies
SELECT d.job_id AS id, d.depends_on AS dependency
  FROM jobs c JOIN dependencies d ON d.job_id = c.id
 WHERE c.parent_id = $1
 ORDER BY d.job_id, d.depends_on;

-- name: select_existing
SELECT id FROM jobs WHERE id = ANY ($1::bigint[]);

-- name: lock_job
SELECT id, parent_id, command, user_name, path, prio_path, affinity_ids, paused, state,
       EXISTS (SELECT 1 FROM jobs c WHERE c.parent_id = jobs.id) AS has_children
  FROM jobs WHERE id = $1 FOR NO KEY UPDATE;

-- name: subtree_height
-- how many levels hang below $1
SELECT coalesce(max(cardinality(s.path)) - cardinality(j.path), 0)
  FROM jobs j LEFT JOIN jobs s ON s.path @> ARRAY[j.id]
 WHERE j.id = $1
 GROUP BY j.path;

-- name: insert_jobs
-- jobs under one parent ($1, NULL for roots; $2 the path of the new jobs, $3 the parent's
-- prio_path), one per element of the JSON array $4; a leaf below a blocked group starts
-- PENDING. Answers their ids.
INSERT INTO jobs (parent_id, path, prio_path, title, command, dir, environment, user_name,
                  url, progress_pattern, own_affinity_ids, affinity_ids, priority, retry,
                  timeout, tags, paused, state, meta, job_type_revision_id, resources)
SELECT $1, $2, $3::integer[] || r.priority, r.title, r.command, r.dir, r.environment,
       r.user_name, r.url, r.progress_pattern, r.own_affinity_ids, r.affinity_ids,
       r.priority, r.retry, r.timeout, r.tags, r.paused,
       CASE WHEN r.command <> '' AND corral_blocked($2, 0) THEN 'PENDING' ELSE 'WAITING' END,
       r.meta, r.job_type_revision_id, r.resources
  FROM jsonb_to_recordset($4::jsonb) AS r (
           "order" integer, title text, command text, dir text, environment text,
           user_name text, url text, progress_pattern text, own_affinity_ids integer[],
           affinity_ids integer[], priority integer, retry integer, timeout integer,
           tags text[], paused boolean, meta jsonb, job_type_revision_id bigint,
           resources jsonb)
 ORDER BY r."order"
RETURNING id;

-- name: update_fields
-- NULL keeps a field as it is
UPDATE jobs
   SET title = coalesce($2, title),
       dir = coalesce($3, dir),
       environment = coalesce($4, environment),
       user_name = coalesce($5, user_name),
       url = coalesce($6, url),
       progress_pattern = coalesce($7, progress_pattern),
       retry = coalesce($8, retry),
       timeout = coalesce($9, timeout),
       tags = coalesce($10, tags)
 WHERE id = $1;

-- name: update_command
-- turning a childless group into a leaf or back: the new leaf waits (or is blocked),
-- the new group's state and times follow from its (empty) counters
UPDATE jobs
   SET command = $2,
       start_time = CASE WHEN $2 = '' THEN 0 ELSE start_time END,
       duration = CASE WHEN $2 = '' THEN 0 ELSE duration END,
       progress = CASE WHEN $2 = '' THEN 0 ELSE progress END,
       state = CASE
           WHEN $2 = '' THEN corral_group_state(total, total_finished, total_errors,
                                                total_working, total_pending, deps_unmet)
           WHEN command = '' THEN CASE WHEN corral_blocked(path, deps_unmet)
                                       THEN 'PENDING' ELSE 'WAITING' END
           ELSE state
       END
 WHERE id = $1;

-- name: update_priority
-- $3: the level of the job in every prio_path of its subtree (1-based)
UPDATE jobs SET priority = CASE WHEN id = $1 THEN $2 ELSE priority END,
                prio_path[$3] = $2
 WHERE id = $1 OR path @> ARRAY[$1::bigint];

-- name: update_own_affinity
UPDATE jobs SET own_affinity_ids = $2 WHERE id = $1;

-- name: refresh_affinity
-- the inherited affinity set of every job in the subtree of $1
UPDATE jobs x
   SET affinity_ids = coalesce((
       SELECT array_agg(DISTINCT a ORDER BY a)
         FROM jobs y, unnest(y.own_affinity_ids) a
        WHERE y.id = x.id OR y.id = ANY (x.path)), '{}')
 WHERE x.id = $1 OR x.path @> ARRAY[$1::bigint];

-- name: move_subtree
-- $1 job, $2 new parent (NULL for root), $3 new path of the job, $4 new prio_path prefix
-- (the new parent's prio_path), $5 old depth of the job (cardinality of its old path)
UPDATE jobs
   SET parent_id = CASE WHEN id = $1 THEN $2 ELSE parent_id END,
       path = $3 || path[$5 + 1:],
       prio_path = $4 || prio_path[$5 + 1:]
 WHERE id = $1 OR path @> ARRAY[$1::bigint];

-- name: delete_dependencies
DELETE FROM dependencies WHERE job_id = $1;

-- name: insert_dependency_pairs
INSERT INTO dependencies (job_id, depends_on)
SELECT unnest($1::bigint[]), unnest($2::bigint[]);

-- name: dependency_cycle
SELECT corral_dependency_cycle($1::bigint[]);

-- name: with_dependencies
-- the jobs among $1 that have dependencies of their own or in their subtree, and the
-- ancestors of $1: what a move must check for cycles
SELECT DISTINCT x.id
  FROM jobs x
 WHERE (x.id = ANY ($1) OR x.path && $1
        OR x.id IN (SELECT unnest(m.path) FROM jobs m WHERE m.id = ANY ($1)))
   AND EXISTS (SELECT 1 FROM dependencies d WHERE d.job_id = x.id);

-- name: delete_subtrees
DELETE FROM jobs WHERE id = ANY ($1) OR path && $1;

-- name: reset_leaves
-- back to the start: waiting (or blocked), unpaused, no run (nor the outcome of one: the
-- runs stay in events); $2 limits it to leaves in ERROR
UPDATE jobs
   SET state = CASE WHEN corral_blocked(path, deps_unmet) THEN 'PENDING' ELSE 'WAITING' END,
       paused = false, start_time = 0, duration = 0, ping_time = 0, run_done = 0,
       progress = 0, worker = '', current_event = NULL, log_size = 0, held_until = 0,
       exit_code = NULL, reason = ''
 WHERE (id = ANY ($1) OR path && $1) AND command <> ''
   AND (NOT $2 OR state = 'ERROR')
RETURNING id;

-- name: delete_logs
DELETE FROM job_logs WHERE job_id = ANY ($1);

-- name: start_subtrees
-- unpause, and queue again the leaves that finished or failed
UPDATE jobs
   SET paused = false,
       held_until = 0,
       state = CASE WHEN command <> '' AND state IN ('FINISHED', 'ERROR')
                    THEN CASE WHEN corral_blocked(path, deps_unmet) THEN 'PENDING' ELSE 'WAITING' END
                    ELSE state END
 WHERE (id = ANY ($1) OR path && $1)
   AND (paused OR held_until > 0 OR (command <> '' AND state IN ('FINISHED', 'ERROR')));

-- name: set_paused
UPDATE jobs SET paused = $2 WHERE (id = ANY ($1) OR path && $1) AND paused <> $2;

-- name: distinct_users
SELECT DISTINCT user_name AS "user" FROM jobs ORDER BY 1;

-- name: distinct_states
SELECT DISTINCT state FROM job_view ORDER BY 1;

-- name: distinct_workers
SELECT DISTINCT worker FROM jobs WHERE worker <> '' ORDER BY 1;

-- name: distinct_priorities
SELECT DISTINCT priority FROM jobs ORDER BY 1;

-- name: distinct_affinities
SELECT DISTINCT corral_affinity_names(own_affinity_ids) AS affinity FROM jobs ORDER BY 1;

-- name: foreign
-- which of the jobs $1 do not belong to the user $2
SELECT id FROM jobs WHERE id = ANY ($1::bigint[]) AND user_name <> $2 ORDER BY id;

-- name: count_children
-- the children of $1, counted up to $2 (enough to tell whether a limit is passed)
SELECT count(*) FROM (SELECT 1 FROM jobs WHERE parent_id = $1 LIMIT $2) c;
