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
-- the log's size, whether the job runs, and when its newest chunk arrived (NULL: no
-- output yet), one step back along job_logs' primary key
SELECT log_size, state = 'WORKING' AS running, ping_time,
       (SELECT l.at FROM job_logs l WHERE l.job_id = jobs.id
         ORDER BY l.byte_offset DESC LIMIT 1) AS last_output
  FROM jobs WHERE id = $1;

-- name: last_outputs
-- when the newest log chunk of each of jobs $1 arrived, for those with output: one step
-- back along job_logs' primary key per job
SELECT j.id, l.at
  FROM unnest($1::bigint[]) AS j (id)
  CROSS JOIN LATERAL (
      SELECT at FROM job_logs WHERE job_id = j.id ORDER BY byte_offset DESC LIMIT 1
  ) l;

-- name: farm_sampled
SELECT 1 FROM farm_samples WHERE minute = $1;

-- name: farm_sample
-- this minute's sample ($1: the minute's start; $2 queued, $3 busy, $4 slots): the first
-- server process to sample a minute writes it, the others change nothing
INSERT INTO farm_samples (minute, queued, busy, slots) VALUES ($1, $2, $3, $4)
    ON CONFLICT (minute) DO NOTHING;

-- name: farm_prune
-- samples before minute $1 go
DELETE FROM farm_samples WHERE minute < $1;

-- name: farm_history
-- the samples from minute $1 on, oldest first
SELECT minute, queued, busy, slots FROM farm_samples WHERE minute >= $1 ORDER BY minute;

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
