-- The clients of workflows (AWE's workers): profiles, states, failure streaks.

-- name: put_client
INSERT INTO workflow_clients (name, profile) VALUES ($1, $2::jsonb)
    ON CONFLICT (name) DO UPDATE SET profile = excluded.profile;

-- name: check
-- what a client's every call needs to know, one row probe each: whether it is known and
-- not lost, suspended, and running something; and whether the server's queue is suspended
SELECT w.state = 'TIMEOUT' AS lost, NOT w.active AS suspended,
       EXISTS (SELECT 1 FROM events e WHERE e.worker = c.name AND e.state = 'WORKING') AS busy,
       (SELECT queue_suspended FROM awe_server) AS queue_suspended
  FROM workflow_clients c JOIN workers w ON w.name = c.name
 WHERE c.name = $1;

-- name: profile
SELECT profile::text FROM workflow_clients WHERE name = $1;

-- name: clients
-- the clients $1 (all when NULL) as the face shows them, with their workunits: those they
-- run, those they failed (never handed to them again), and their run counts
SELECT c.name, c.profile::text AS profile, c.registered, c.suspend_reason, w.ping_time,
       w.state = 'TIMEOUT' AS lost, NOT w.active AS suspended,
       coalesce(runs.running, '{}') AS running, coalesce(runs.failed_units, '{}') AS skip,
       coalesce(runs.total, 0)::integer AS checkouts,
       coalesce(runs.done, 0)::integer AS completed,
       coalesce(runs.failed, 0)::integer AS failed
  FROM workflow_clients c
  JOIN workers w ON w.name = c.name
  LEFT JOIN LATERAL (
      SELECT array_agg(DISTINCT f.id::text || '_' || u.task || '_' || u.rank)
                 FILTER (WHERE e.state = 'WORKING') AS running,
             array_agg(DISTINCT f.id::text || '_' || u.task || '_' || u.rank)
                 FILTER (WHERE e.exit_code <> 0) AS failed_units,
             count(*) AS total,
             count(*) FILTER (WHERE e.exit_code = 0) AS done,
             count(*) FILTER (WHERE e.exit_code <> 0) AS failed
        FROM events e
        JOIN workflow_units u ON u.job_id = e.job_id
        JOIN workflows f ON f.job_id = u.workflow_id
       WHERE e.worker = c.name
  ) runs ON true
 WHERE $1::text[] IS NULL OR c.name = ANY ($1::text[])
 ORDER BY c.registered, c.name;

-- name: failing
-- whether the client's last $2 ended runs since its streak began all failed (its
-- interrupted runs do not count either way)
SELECT count(*) = $2 AND bool_and(t.exit_code <> 0)
  FROM (SELECT e.exit_code FROM events e, workflow_clients c
         WHERE c.name = $1 AND e.worker = c.name AND e.id > c.streak_after
           AND e.state IN ('FINISHED', 'ERROR') AND e.exit_code IS NOT NULL
         ORDER BY e.id DESC LIMIT $2) t;

-- name: suspend
-- suspend the clients $1 (all when NULL) that are not suspended yet, for reason $2; the
-- names suspended
WITH chosen AS (
    UPDATE workers w SET active = false
      FROM workflow_clients c
     WHERE c.name = w.name AND w.active AND ($1::text[] IS NULL OR c.name = ANY ($1::text[]))
    RETURNING w.name
)
UPDATE workflow_clients c SET suspend_reason = $2
  FROM chosen WHERE chosen.name = c.name
RETURNING c.name;

-- name: resume
-- resume the suspended clients $1 (all when NULL): their failure streak begins again
WITH chosen AS (
    UPDATE workers w SET active = true
      FROM workflow_clients c
     WHERE c.name = w.name AND NOT w.active AND ($1::text[] IS NULL OR c.name = ANY ($1::text[]))
    RETURNING w.name
)
UPDATE workflow_clients c
   SET suspend_reason = '',
       streak_after = coalesce((SELECT max(e.id) FROM events e WHERE e.worker = c.name), 0)
  FROM chosen WHERE chosen.name = c.name
RETURNING c.name;

-- name: unit
-- the workflow (its root and id) and task of the leaf $1, when it is a workunit
SELECT u.workflow_id AS root, w.id::text AS workflow, u.task, u.rank
  FROM workflow_units u JOIN workflows w ON w.job_id = u.workflow_id
 WHERE u.job_id = $1;
