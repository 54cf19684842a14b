-- Workflows: AWE's jobs of tasks and workunits, over the job tree.

-- name: insert_workflow
INSERT INTO workflows (job_id, id, document) VALUES ($1, $2, $3::jsonb);

-- name: insert_task
INSERT INTO workflow_tasks (group_id, workflow_id, name, position, totalwork)
VALUES ($1, $2, $3, $4, $5);

-- name: workflows
-- the workflows $1 (ids), with their state and each task's (workflow_view, 0015)
SELECT v.id, v.job_id, v.document::text AS document, v.job_state, v.error::text AS error,
       v.resumed, v.submitted, v.updated, v.completed, v.expiration, v.auth,
       (SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'name', t.name,
                   'state', workflow_task_state(g.state, g.paused, g.total_finished, v.root_paused),
                   'finished', g.total_finished, 'total', g.total,
                   'started', nullif(g.start_time, 0))
                   ORDER BY t.position), '[]')::text
          FROM workflow_tasks t JOIN jobs g ON g.id = t.group_id
         WHERE t.workflow_id = v.job_id) AS tasks
  FROM workflow_view v
 WHERE v.id = ANY ($1::uuid[])
 ORDER BY v.submitted DESC, v.job_id DESC;

-- name: server
SELECT uuid::text AS uuid, queue_suspended, debug_level FROM awe_server;

-- name: insert_unit
INSERT INTO workflow_units (job_id, workflow_id, task, rank) VALUES ($1, $2, $3, $4);

-- name: unit_of_job
-- the workunit a leaf is, with its workflow's id
SELECT u.job_id, u.task, u.rank, w.id::text AS workflow
  FROM workflow_units u JOIN workflows w ON w.job_id = u.workflow_id
 WHERE u.job_id = $1;

-- name: job_of_unit
-- the leaf of workunit (workflow $1, task $2, rank $3)
SELECT u.job_id FROM workflow_units u JOIN workflows w ON w.job_id = u.workflow_id
 WHERE w.id = $1::uuid AND u.task = $2 AND u.rank = $3;

-- name: put_report
INSERT INTO workflow_reports (job_id, kind, text) VALUES ($1, $2, $3)
    ON CONFLICT (job_id, kind) DO UPDATE SET text = excluded.text;

-- name: report
SELECT text FROM workflow_reports WHERE job_id = $1 AND kind = $2;

-- name: lock_workflow
-- The root first, then the workflow: a run's end locks the root (its rollup) before the
-- workflow (workflow_tree_moved), so taking them in the other order could deadlock.
WITH root AS MATERIALIZED (
    SELECT j.id FROM jobs j WHERE j.id = (SELECT job_id FROM workflows WHERE id = $1::uuid)
       FOR NO KEY UPDATE
)
SELECT w.job_id FROM workflows w JOIN root ON root.id = w.job_id FOR UPDATE OF w;

-- name: mark
-- what a workflow keeps beside its tree: its error, resume count and kept state
UPDATE workflows
   SET error = $2::jsonb, resumed = resumed + $3, state = $4, updated = corral_epoch()
 WHERE job_id = $1;

-- name: set_document
UPDATE workflows SET document = $2::jsonb, updated = corral_epoch() WHERE job_id = $1;

-- name: set_pools
-- the workunits of the workflow $1 go to the pools $2 (client groups; none: any), their
-- other placement tags kept (core/placement.py: `pool:<name>`)
UPDATE jobs
   SET tags = ARRAY(SELECT t FROM unnest(tags) AS t WHERE t NOT LIKE 'pool:%') || $2::text[]
 WHERE path && ARRAY[$1::bigint] AND command <> '';

-- name: task_groups
SELECT name, group_id FROM workflow_tasks WHERE workflow_id = $1 ORDER BY position;

-- name: document
SELECT document::text FROM workflows WHERE job_id = $1;

-- -- Listings (Workflows.page) ----------------------------------------------------------
-- `page`, `count`, `distinct_info` and `distinct_time` share `listing_where`, put in the
-- place of /*where*/; in it /*scope*/ becomes `listing_live` when every state asked for
-- is a live one (the partial index workflows_live then holds the candidates) and `true`
-- otherwise. `page` takes one of the `order_*` fragments for /*order*/. Those are the
-- only texts composed: every value of the request is a bound parameter.
--   $1 states (NULL: any), $2 a jsonpath predicate over the info (NULL: any), $3 ids
--   (NULL: any), $4 and $5 a time range [start, end) that the submission or the
--   completion falls in (NULL: any)

-- name: listing_where
/*scope*/
   AND ($1::text[] IS NULL OR v.job_state = ANY ($1::text[]))
   AND ($2::jsonpath IS NULL OR v.info @@ $2::jsonpath)
   AND ($3::uuid[] IS NULL OR v.id = ANY ($3::uuid[]))
   AND ($4::float8 IS NULL
        OR (v.submitted >= $4::float8 AND v.submitted < $5::float8)
        OR (v.completed >= $4::float8 AND v.completed < $5::float8))

-- name: listing_live
v.kept_state IS NULL AND v.root_state <> 'FINISHED'

-- name: page
-- the ids of one page: $6 rows from row $7
SELECT v.id FROM workflow_view v
 WHERE /*where*/
 ORDER BY /*order*/
 LIMIT $6 OFFSET $7;

-- name: count
SELECT count(*) FROM workflow_view v WHERE /*where*/;

-- name: distinct_info
-- the values the info has at the path $6 (text[]), as JSON
SELECT DISTINCT v.info #> $6::text[] AS value FROM workflow_view v
 WHERE /*where*/ AND v.info #> $6::text[] IS NOT NULL
 ORDER BY 1;

-- name: distinct_time
-- the submission ($6) or completion (NOT $6) times
SELECT DISTINCT CASE WHEN $6::boolean THEN v.submitted ELSE v.completed END AS value
  FROM workflow_view v
 WHERE /*where*/ AND (v.completed IS NOT NULL OR $6::boolean)
 ORDER BY 1;

-- name: order_submitted_desc
v.submitted DESC, v.job_id DESC
-- name: order_submitted_asc
v.submitted, v.job_id
-- name: order_completed_desc
v.completed DESC NULLS LAST, v.job_id DESC
-- name: order_completed_asc
v.completed NULLS FIRST, v.job_id
-- name: order_updated_desc
v.updated DESC, v.job_id DESC
-- name: order_updated_asc
v.updated, v.job_id
-- name: order_priority_desc
(v.info ->> 'priority')::integer DESC, v.job_id DESC
-- name: order_priority_asc
(v.info ->> 'priority')::integer, v.job_id
-- name: order_name_desc
v.info ->> 'name' DESC, v.job_id DESC
-- name: order_name_asc
v.info ->> 'name', v.job_id
-- name: order_id_desc
v.id DESC
-- name: order_id_asc
v.id
-- name: order_state_desc
v.job_state DESC, v.job_id DESC
-- name: order_state_asc
v.job_state, v.job_id

-- -- One workflow's other views ---------------------------------------------------------

-- name: unit_reports
-- every report kept for the workunits of workflow $1 (its root)
SELECT u.task, u.rank, r.kind, r.text
  FROM workflow_units u JOIN workflow_reports r ON r.job_id = u.job_id
 WHERE u.workflow_id = $1;

-- name: position
-- 1 + the live workflows ahead of root $1 in dispatch order: a higher priority, or the
-- same one and submitted before (the dispatcher's FIFO among equals)
-- (the info's priority is the root group's: Workflows.set_info keeps them one)
WITH me AS (SELECT (info ->> 'priority')::integer AS priority FROM workflows WHERE job_id = $1)
SELECT count(*) + 1 FROM workflow_view v, me
 WHERE v.kept_state IS NULL AND v.root_state <> 'FINISHED'
   AND v.job_state IN ('queued', 'in-progress')
   AND ((v.info ->> 'priority')::integer > me.priority
        OR ((v.info ->> 'priority')::integer = me.priority AND v.job_id < $1));

-- name: suspended
SELECT v.id FROM workflow_view v
 WHERE v.kept_state IS NULL AND v.root_state <> 'FINISHED' AND v.job_state = 'suspend'
 ORDER BY v.job_id;

-- name: exists
SELECT EXISTS (SELECT FROM workflows WHERE id = $1::uuid);

-- name: finish_leaves
-- an imported workflow's leaves: done as they are made, never queued
UPDATE jobs SET state = 'FINISHED' WHERE path && ARRAY[$1::bigint] AND command <> '';

-- name: set_times
UPDATE workflows SET submitted = $2, completed = $3, updated = $2 WHERE job_id = $1;

-- name: set_expiration
UPDATE workflows SET expiration = $2, updated = corral_epoch() WHERE job_id = $1;

-- name: set_datatoken
UPDATE workflows SET datatoken = $2, updated = corral_epoch() WHERE job_id = $1;

-- name: datatoken
-- the data token of the workflow job $1 (any job of its tree) belongs to; no row: none
SELECT w.datatoken FROM jobs j JOIN workflows w ON w.job_id = coalesce(j.path[1], j.id)
 WHERE j.id = $1;

-- -- Expiry ------------------------------------------------------------------------------

-- name: try_expiry_lock
-- one server's expiry pass at a time (7221, 20: core.runs and dispatch take 1 to 6)
SELECT pg_try_advisory_xact_lock(7221, 20);

-- name: expired
-- up to $1 completed or deleted workflows whose expiration has passed
SELECT v.id FROM workflow_view v
 WHERE v.expiration < corral_epoch() AND v.job_state IN ('completed', 'deleted')
 ORDER BY v.expiration
 LIMIT $1;

-- -- The queue (GET /queue) ------------------------------------------------------------

-- name: set_queue_suspended
UPDATE awe_server SET queue_suspended = $1;

-- name: set_debug_level
UPDATE awe_server SET debug_level = $1;

-- name: queue_counts
-- AWE's queue status in one statement: jobs, tasks and workunits of the live workflows
-- (AWE keeps those in memory; completed ones leave it), and the clients not lost
WITH live AS MATERIALIZED (
    SELECT v.job_id, v.job_state, v.root_paused FROM workflow_view v
     WHERE v.kept_state IS NULL AND v.root_state <> 'FINISHED'
), tasks AS (
    SELECT workflow_task_state(g.state, g.paused, g.total_finished, l.root_paused) AS state
      FROM live l JOIN workflow_tasks t ON t.workflow_id = l.job_id
      JOIN jobs g ON g.id = t.group_id
), units AS (
    SELECT workflow_unit_state(x.state, x.paused) AS state
      FROM live l JOIN workflow_units u ON u.workflow_id = l.job_id
      JOIN jobs x ON x.id = u.job_id
), clients AS (
    SELECT w.state = 'WORKING' AS busy, NOT w.active AS suspended
      FROM workflow_clients c JOIN workers w ON w.name = c.name
     WHERE w.state <> 'TIMEOUT'
)
SELECT (SELECT count(*) FILTER (WHERE job_state IN ('queued', 'in-progress')) FROM live)
           AS jobs_active,
       (SELECT count(*) FILTER (WHERE job_state = 'suspend') FROM live) AS jobs_suspended,
       t.*, u.*, c.*
  FROM (SELECT count(*) AS tasks_total,
               count(*) FILTER (WHERE state = 'queued') AS tasks_queuing,
               count(*) FILTER (WHERE state = 'in-progress') AS tasks_in_progress,
               count(*) FILTER (WHERE state = 'pending') AS tasks_pending,
               count(*) FILTER (WHERE state = 'completed') AS tasks_completed,
               count(*) FILTER (WHERE state = 'suspend') AS tasks_suspended,
               count(*) FILTER (WHERE state = 'failed-permanent') AS tasks_failed
          FROM tasks) t,
       (SELECT count(*) FILTER (WHERE state = 'queued') AS units_queuing,
               count(*) FILTER (WHERE state = 'checkout') AS units_checkout,
               count(*) FILTER (WHERE state = 'suspend') AS units_suspended
          FROM units) u,
       (SELECT count(*) AS clients_total,
               count(*) FILTER (WHERE busy) AS clients_busy,
               count(*) FILTER (WHERE suspended) AS clients_suspended
          FROM clients) c;

-- name: live_ids
-- the live workflows (queued, in progress, suspended), oldest first
SELECT v.id, v.job_state FROM workflow_view v
 WHERE v.kept_state IS NULL AND v.root_state <> 'FINISHED'
 ORDER BY v.submitted, v.job_id;

-- name: queue_units
-- the workunits of live workflows in the states $1 (workflow_unit_state), with the
-- client running each
SELECT v.id::text AS workflow, u.job_id, u.task, u.rank,
       workflow_unit_state(x.state, x.paused) AS state, x.worker
  FROM workflow_view v JOIN workflow_units u ON u.workflow_id = v.job_id
  JOIN jobs x ON x.id = u.job_id
 WHERE v.kept_state IS NULL AND v.root_state <> 'FINISHED'
   AND workflow_unit_state(x.state, x.paused) = ANY ($1::text[])
 ORDER BY v.submitted, v.job_id, u.job_id;

-- name: group_queue
-- the queued and in-progress workflows a client of group $1 may take work from (those
-- naming it in info.clientgroups, and those naming no group), in dispatch order
SELECT v.id FROM workflow_view v
 WHERE v.kept_state IS NULL AND v.root_state <> 'FINISHED'
   AND v.job_state IN ('queued', 'in-progress')
   AND (coalesce(v.info ->> 'clientgroups', '') = ''
        OR $1 = ANY (string_to_array(v.info ->> 'clientgroups', ',')))
 ORDER BY (v.info ->> 'priority')::integer DESC, v.job_id;

-- name: client_states
SELECT c.name, c.profile::text AS profile, w.state, w.active
  FROM workflow_clients c JOIN workers w ON w.name = c.name
 WHERE w.state <> 'TIMEOUT'
 ORDER BY c.registered, c.name;
