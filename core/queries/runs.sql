-- Runs: a leaf running on a worker, with its event. Dispatch and the worker protocols
-- build on these.

-- name: start_runs
-- Start jobs $1 on workers $2 (pairwise); a job starts only if it is still a ready leaf
-- and nobody else holds it. $3 (pairwise) tells which runs the caller hands to a waiting
-- pick itself; for the others, the picks waiting in any server process hear at commit
-- which workers have runs (payloads under the 8000 bytes pg_notify takes). Answers the
-- runs that started, with what their workers need to run them.
WITH clock AS MATERIALIZED (
    SELECT corral_clock() AS now
), pairs AS (
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::boolean[]) AS p (job_id, worker, handed)
), locked AS (
    -- by primary key only: with the ready-queue conditions here the planner may walk
    -- the whole ready index when its statistics lag behind a bulk load
    SELECT j.id, j.title, j.state, j.paused, j.command, j.held_until, j.dir, j.environment,
           j.user_name, j.progress_pattern, j.timeout, j.job_type_revision_id, j.service_group,
           pairs.worker,
           pairs.handed
      FROM jobs j JOIN pairs ON pairs.job_id = j.id
     FOR NO KEY UPDATE OF j SKIP LOCKED
), ready AS (
    SELECT * FROM locked
     WHERE state = 'WAITING' AND NOT paused AND command <> '' AND held_until = 0
), event AS (
    INSERT INTO events (worker, job_id, job_title, start, delivered)
    SELECT ready.worker, ready.id, ready.title, clock.now, ready.handed FROM ready, clock
    RETURNING id, job_id, worker, delivered
), started AS (
    UPDATE jobs j
       SET state = 'WORKING', worker = event.worker, start_time = clock.now,
           ping_time = clock.now, duration = 0, progress = 0, current_event = event.id,
           exit_code = NULL, reason = ''
      FROM event, clock WHERE j.id = event.job_id
), busy AS (
    UPDATE workers w
       SET state = 'WORKING', current_event = c.event, last_job = c.job,
           wanted = greatest(w.wanted - c.n, 0)
      FROM (SELECT worker, count(*)::integer AS n, max(id) AS event, max(job_id) AS job
              FROM event GROUP BY worker) c
     WHERE w.name = c.worker
), told AS (
    SELECT count(pg_notify('corral_assigned', names)) AS n
      FROM (SELECT string_agg(worker, E'\n') AS names
              FROM (SELECT worker, sum(octet_length(worker) + 1) OVER (ORDER BY worker) AS upto
                      FROM (SELECT DISTINCT worker FROM event WHERE NOT delivered) d) s
             GROUP BY upto::bigint / 7000) b
)
SELECT e.worker, e.id AS event, e.job_id AS job, r.title, r.command, r.dir, r.environment,
       r.user_name AS "user", r.progress_pattern, r.timeout,
       r.job_type_revision_id AS revision, r.service_group AS service
  FROM event e JOIN ready r ON r.id = e.job_id, told;

-- name: lock_run
-- the run $1 of worker $2 if it is still the current run of its job, with the job as
-- policies see it
SELECT e.id AS event, e.worker, e.start, j.id, coalesce(j.parent_id, 0) AS parent, j.title,
       j.user_name, j.priority, j.prio_path, j.affinity_ids, j.tags, j.retry, j.run_done,
       j.timeout
  FROM events e JOIN jobs j ON j.id = e.job_id AND j.current_event = e.id
 WHERE e.id = $1 AND ($2::text IS NULL OR e.worker = $2) AND e.state = 'WORKING'
   FOR NO KEY UPDATE OF j;

-- name: end_run
-- End the run $1 (of worker $7, when given; with $1 null, the current run of the job $8:
-- a worker that names the job, as Coalition's endjob does, ends it in this one
-- statement): the event ends as $5 (with exit code $2 and reason $6), the job goes to
-- $3 (FINISHED, ERROR, or WAITING to run again, not before $4 seconds from now). Answers
-- the job id and the state it is in now, or
-- nothing when the run was no longer current.
WITH clock AS MATERIALIZED (
    SELECT corral_clock() AS now
), run AS (
    UPDATE events e
       SET state = $5, duration = clock.now - e.start, exit_code = $2, reason = $6
      FROM clock
     WHERE e.id = coalesce($1::bigint, (SELECT c.current_event FROM jobs c WHERE c.id = $8))
       AND e.state = 'WORKING' AND ($7::text IS NULL OR e.worker = $7)
    RETURNING e.id, e.job_id, e.worker
), job AS (
    UPDATE jobs j
       SET state = CASE WHEN $3::text = 'WAITING' AND corral_blocked(j.path, j.deps_unmet)
                        THEN 'PENDING' ELSE $3::text END,
           duration = clock.now - j.start_time,
           run_done = j.run_done + 1,
           progress = CASE WHEN $3::text = 'FINISHED' THEN 1 ELSE j.progress END,
           held_until = CASE WHEN $4::double precision > 0
                             THEN clock.now + $4 ELSE 0 END,
           current_event = NULL, exit_code = $2, reason = $6
      FROM run, clock WHERE j.id = run.job_id AND j.current_event = run.id
    RETURNING j.id, j.state
), counted AS (
    UPDATE workers w
       SET finished = w.finished + ($5::text = 'FINISHED')::integer,
           error = w.error + ($5::text <> 'FINISHED')::integer,
           state = CASE
               WHEN w.state = 'TIMEOUT' THEN 'TIMEOUT'
               WHEN EXISTS (SELECT 1 FROM events o WHERE o.worker = w.name
                               AND o.state = 'WORKING' AND o.id <> run.id) THEN 'WORKING'
               ELSE 'WAITING' END,
           current_event = CASE WHEN w.current_event = run.id THEN NULL ELSE w.current_event END
      FROM run WHERE w.name = run.worker
)
SELECT id, state FROM job;

-- name: interrupt_runs
-- Stop the runs of the leaves below $1 (job ids) and of the workers $2: each job goes
-- back to waiting (or blocked), each event ends as $3 with the reason $4. The worker
-- process learns it at its next heartbeat. Answers the jobs stopped.
WITH clock AS MATERIALIZED (
    SELECT corral_clock() AS now
), stopped AS (
    UPDATE jobs j
       SET state = CASE WHEN corral_blocked(j.path, j.deps_unmet) THEN 'PENDING' ELSE 'WAITING' END,
           current_event = NULL,
           duration = clock.now - j.start_time,
           exit_code = NULL, reason = $4
      FROM jobs o, clock
     WHERE o.id = j.id AND j.state = 'WORKING' AND j.command <> ''
       AND (j.id = ANY ($1::bigint[]) OR j.path && $1::bigint[] OR j.worker = ANY ($2::text[]))
    RETURNING j.id AS job_id, o.current_event AS event_id
), ended AS (
    UPDATE events e
       SET state = $3, duration = clock.now - e.start, reason = $4
      FROM stopped, clock WHERE e.id = stopped.event_id AND e.state = 'WORKING'
    RETURNING e.id, e.worker
), freed AS (
    UPDATE workers w
       SET state = CASE
               WHEN w.state = 'TIMEOUT' THEN 'TIMEOUT'
               WHEN EXISTS (SELECT 1 FROM events o WHERE o.worker = w.name AND o.state = 'WORKING'
                               AND o.id NOT IN (SELECT id FROM ended)) THEN 'WORKING'
               ELSE 'WAITING' END,
           current_event = CASE WHEN w.current_event IN (SELECT id FROM ended)
                                THEN NULL ELSE w.current_event END
     WHERE w.name IN (SELECT worker FROM ended)
)
SELECT job_id FROM stopped;

-- name: run_states
-- the state of each of a worker's runs $2 (event ids), and why it stopped if it did
SELECT e.id, e.state, e.reason, j.progress_pattern, j.id AS job, j.service_group
  FROM events e LEFT JOIN jobs j ON j.id = e.job_id AND j.current_event = e.id
 WHERE e.id = ANY ($2::bigint[]) AND e.worker = $1;

-- name: worker_known
SELECT 1 FROM workers WHERE name = $1;

-- name: current_run
SELECT current_event FROM jobs WHERE id = $1 AND worker = $2 AND state = 'WORKING';

-- name: ping_workers
-- The idle heartbeats of many workers in one statement ($1: a JSON list of objects with
-- name, cpu, free_memory and total_memory; a null keeps the figure known). A worker
-- named twice takes one of its heartbeats. Answers the names of the known workers.
UPDATE workers w
   SET ping_time = corral_epoch(), cpu = coalesce(p.cpu, w.cpu),
       free_memory = coalesce(p.free_memory, w.free_memory),
       total_memory = coalesce(p.total_memory, w.total_memory),
       state = CASE WHEN w.state = 'TIMEOUT' THEN 'WAITING' ELSE w.state END
  FROM (SELECT DISTINCT ON (name) *
          FROM jsonb_to_recordset($1::jsonb)
               AS r (name text, cpu real[], free_memory bigint, total_memory bigint)) p
 WHERE w.name = p.name
RETURNING w.name;

-- name: ping_job
-- a heartbeat of the run $2 of job $1, with its progress if the log told it
UPDATE jobs SET ping_time = corral_epoch(), progress = coalesce($3, progress)
 WHERE id = $1 AND current_event = $2;

-- name: log_tail
-- the last chunks of a job's log, newest last: enough to complete a progress figure split
-- across several heartbeats
SELECT coalesce(string_agg(data, ''::bytea ORDER BY byte_offset), ''::bytea)
  FROM (SELECT data, byte_offset FROM job_logs
         WHERE job_id = $1 ORDER BY byte_offset DESC LIMIT 16) last;

-- name: running
-- every running job, for the timeout pass
SELECT e.id AS event, e.worker, e.start, j.id, coalesce(j.parent_id, 0) AS parent, j.title,
       j.user_name, j.priority, j.prio_path, j.affinity_ids, j.tags, j.retry, j.run_done,
       j.timeout
  FROM jobs j JOIN events e ON e.id = j.current_event
 WHERE j.state = 'WORKING';

-- name: lose_workers
-- workers silent for more than $1 seconds stop answering for their jobs
UPDATE workers w SET state = 'TIMEOUT', wanted = 0
  FROM workers o
 WHERE o.name = w.name AND w.ping_time < corral_epoch() - $1 AND w.state <> 'TIMEOUT'
RETURNING w.name, o.state AS old;

-- name: unreported_runs
-- runs their worker has not reported for more than $1 seconds (a hand-over whose answer
-- never arrived, a run the worker forgot): their jobs go back to the queue
SELECT id FROM jobs
 WHERE state = 'WORKING' AND command <> '' AND ping_time < corral_epoch() - $1;

-- name: now
SELECT corral_epoch();

-- name: release_held
-- delayed retries whose time has come
UPDATE jobs SET held_until = 0 WHERE held_until > 0 AND held_until <= corral_epoch();

-- name: fail_exhausted
-- Those of the jobs $1 (just stopped: interrupt_runs) that are made from job types, whose
-- last run was lost with its worker, and that have run their type's max_tries times:
-- they fail (node-lost) instead of waiting to run again.
UPDATE jobs j
   SET state = 'ERROR'
  FROM job_type_revisions r, job_types t
 WHERE j.id = ANY ($1::bigint[]) AND r.id = j.job_type_revision_id AND t.id = r.job_type_id
   AND j.state IN ('WAITING', 'PENDING')
   AND (SELECT e.reason FROM events e WHERE e.job_id = j.id ORDER BY e.id DESC LIMIT 1)
       = ANY (corral_lost_reasons())
   AND (SELECT count(*) FROM events e WHERE e.job_id = j.id) >= t.max_tries;
