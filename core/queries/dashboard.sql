-- What the dashboard reads beyond the job and worker listings (core/dashboard.py).

-- name: job_path
-- the ancestors of job $1, root first, for the breadcrumbs: jobs.path holds their ids, so
-- this is one primary-key lookup per level; no row when the job does not exist
SELECT j.id, coalesce(a.ids, '{}') AS ids, coalesce(a.titles, '{}') AS titles
  FROM jobs j
  LEFT JOIN LATERAL (
      SELECT array_agg(p.id ORDER BY o.n) AS ids, array_agg(p.title ORDER BY o.n) AS titles
        FROM unnest(j.path) WITH ORDINALITY AS o (id, n)
        JOIN jobs p ON p.id = o.id
  ) a ON true
 WHERE j.id = $1;

-- name: job_exists
SELECT 1 FROM jobs WHERE id = $1;

-- name: job_runs
-- the runs of job $1, newest first, at most $2 (events_job)
SELECT id, worker, state, start,
       CASE WHEN state = 'WORKING' THEN corral_epoch() - start ELSE duration END AS duration,
       exit_code, reason
  FROM events
 WHERE job_id = $1
 ORDER BY id DESC
 LIMIT $2;

-- name: job_dependants
-- the jobs that depend on job $1 (dependencies_target), at most $2
SELECT job_id FROM dependencies WHERE depends_on = $1 ORDER BY job_id LIMIT $2;

-- name: job_log_size
SELECT log_size, state = 'WORKING' AS running, ping_time FROM jobs WHERE id = $1;

-- name: farm_slots
-- slots of the workers in dispatch (active and not lost), and runs going on now
-- (events_running): a few rows of workers, one index range of events
SELECT coalesce(sum(slots) FILTER (WHERE active AND state <> 'TIMEOUT'), 0)::bigint AS slots,
       (SELECT count(*) FROM events WHERE state = 'WORKING') AS busy
  FROM workers;

-- name: farm_minutes
-- runs ended in each minute from $1 (epoch seconds, a minute's start) on, finished and
-- failed: one range of events_ended (an index-only scan once vacuumed)
SELECT floor((start + duration - $1) / 60)::integer AS minute,
       count(*) FILTER (WHERE state = 'FINISHED') AS finished,
       count(*) FILTER (WHERE state <> 'FINISHED') AS failed
  FROM events
 WHERE state <> 'WORKING' AND start + duration >= $1
 GROUP BY 1
 ORDER BY 1;
