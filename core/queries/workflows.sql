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
