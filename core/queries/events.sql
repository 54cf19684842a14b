-- Events: one row per run of a job on a worker.

-- name: select_events
-- newest first; $1 job, $2 worker, $3 only those started in the last $3 seconds
SELECT id, worker, job_id, job_title, state, start::bigint AS start,
       (CASE WHEN state = 'WORKING' THEN corral_epoch() - start ELSE duration END)::bigint
           AS duration,
       exit_code, reason
  FROM events
 WHERE ($1::bigint IS NULL OR job_id = $1)
   AND ($2::text IS NULL OR worker = $2)
   AND ($3::double precision IS NULL OR start >= corral_epoch() - $3)
 ORDER BY id DESC
 LIMIT $4;
