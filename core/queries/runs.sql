-- Runs: a leaf running on a worker, with its event. Dispatch and the worker protocols
-- build on these.

-- name: start_run
-- $1 job, $2 worker; only a waiting, unpaused leaf starts. Answers the event id.
WITH job AS (
    SELECT id, title FROM jobs
     WHERE id = $1 AND state = 'WAITING' AND NOT paused AND command <> ''
     FOR NO KEY UPDATE
), event AS (
    INSERT INTO events (worker, job_id, job_title, start)
    SELECT $2, job.id, job.title, corral_epoch() FROM job
    RETURNING id, job_id
), started AS (
    UPDATE jobs j
       SET state = 'WORKING', worker = $2, start_time = corral_epoch(),
           ping_time = corral_epoch(), duration = 0, progress = 0, current_event = event.id
      FROM event WHERE j.id = event.job_id
), busy AS (
    UPDATE workers w
       SET state = 'WORKING', current_event = event.id, last_job = event.job_id,
           ping_time = corral_epoch()
      FROM event WHERE w.name = $2
)
SELECT id FROM event;

-- name: finish_run
-- $1 event, $2 exit code, $3 the job's next state (FINISHED, ERROR, or WAITING to run
-- again); only the job's current run can finish it. Answers the job id.
WITH run AS (
    UPDATE events e
       SET state = CASE WHEN $2 = 0 THEN 'FINISHED' ELSE 'ERROR' END,
           duration = corral_epoch() - e.start, exit_code = $2
     WHERE e.id = $1 AND e.state = 'WORKING'
    RETURNING e.id, e.job_id, e.worker
), job AS (
    UPDATE jobs j
       SET state = CASE WHEN $3::text = 'WAITING' AND corral_blocked(j.path, j.deps_unmet)
                        THEN 'PENDING' ELSE $3::text END,
           duration = corral_epoch() - j.start_time,
           run_done = j.run_done + 1,
           progress = CASE WHEN $3::text = 'FINISHED' THEN 1 ELSE j.progress END,
           current_event = NULL
      FROM run WHERE j.id = run.job_id AND j.current_event = run.id
    RETURNING j.id
), counted AS (
    UPDATE workers w
       SET finished = w.finished + ($2 = 0)::integer,
           error = w.error + ($2 <> 0)::integer,
           state = 'WAITING',
           current_event = NULL
      FROM run WHERE w.name = run.worker
)
SELECT id FROM job;

-- name: interrupt_runs
-- Stop the runs of the leaves below $1 (job ids) and of the workers $2: each job goes
-- back to waiting (or blocked), each event ends as $3. The worker process learns it at
-- its next heartbeat.
WITH stopped AS (
    UPDATE jobs j
       SET state = CASE WHEN corral_blocked(j.path, j.deps_unmet) THEN 'PENDING' ELSE 'WAITING' END,
           current_event = NULL,
           duration = corral_epoch() - j.start_time
      FROM jobs o
     WHERE o.id = j.id AND j.state = 'WORKING'
       AND (j.id = ANY ($1::bigint[]) OR j.path && $1::bigint[] OR j.worker = ANY ($2::text[]))
    RETURNING o.current_event AS event_id
), ended AS (
    UPDATE events e
       SET state = $3, duration = corral_epoch() - e.start
      FROM stopped WHERE e.id = stopped.event_id AND e.state = 'WORKING'
    RETURNING e.id
)
UPDATE workers w
   SET state = 'WAITING', current_event = NULL
  FROM ended WHERE w.current_event = ended.id;
