-- Workflows: AWE's jobs of tasks and workunits, over the job tree.

-- name: insert_workflow
INSERT INTO workflows (job_id, id, document) VALUES ($1, $2, $3::jsonb);

-- name: insert_task
INSERT INTO workflow_tasks (group_id, workflow_id, name, position, totalwork)
VALUES ($1, $2, $3, $4, $5);

-- name: all_ids
SELECT id FROM workflows ORDER BY submitted DESC, job_id DESC;

-- name: workflows
-- the workflows $1 (ids), with the state of their tree and of each task's group
SELECT w.id, w.job_id, w.document::text AS document, w.state AS kept_state,
       w.error::text AS error, w.resumed, w.submitted, w.updated, w.completed, w.expiration,
       j.state, j.paused,
       (SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'group_id', g.id, 'name', t.name, 'state', g.state, 'paused', g.paused,
                   'finished', g.total_finished, 'total', g.total,
                   'started', nullif(g.start_time, 0), 'completed', NULL)
                   ORDER BY t.position), '[]')::text
          FROM workflow_tasks t JOIN jobs g ON g.id = t.group_id
         WHERE t.workflow_id = w.job_id) AS tasks
  FROM workflows w JOIN jobs j ON j.id = w.job_id
 WHERE w.id = ANY ($1::uuid[])
 ORDER BY w.submitted DESC, w.job_id DESC;

-- name: server
SELECT uuid::text AS uuid, queue_suspended FROM awe_server;

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
SELECT job_id FROM workflows WHERE id = $1::uuid FOR UPDATE;

-- name: mark
-- what a workflow keeps beside its tree: its error, resume count and kept state
UPDATE workflows
   SET error = $2::jsonb, resumed = resumed + $3, state = $4, updated = corral_epoch()
 WHERE job_id = $1;

-- name: set_document
UPDATE workflows SET document = $2::jsonb, updated = corral_epoch() WHERE job_id = $1;

-- name: task_groups
SELECT name, group_id FROM workflow_tasks WHERE workflow_id = $1 ORDER BY position;

-- name: document
SELECT document::text FROM workflows WHERE job_id = $1;
