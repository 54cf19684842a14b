-- Dispatch: the demand of waiting workers, the ready queue, and handing runs over.

-- name: pass_start
-- A planning pass begins, in one round trip: the planner lock (one pass at a time across
-- every server process on this database) and, when it is taken, the workers waiting for
-- work (longest waiting first, with their ordered rules, pools and apps), the affinity
-- names, the distinct affinity sets of the ready queue (one index probe each), and, when
-- $2 (the tag prefix of job types' jobs) is given, the farm as the admit policies see it:
-- the running jobs by tag and by user, and the limits and holds of job types on the tags
-- of their jobs (the prefix, then the type's id).
WITH RECURSIVE planner AS MATERIALIZED (
    SELECT pg_try_advisory_xact_lock(7221, 1) AS locked
), demand AS (
    SELECT w.name, w.wanted, w.slots, w.wanted_at,
           (SELECT count(*) FROM events e
             WHERE e.worker = w.name AND e.state = 'WORKING')::integer AS running,
           coalesce((SELECT array_agg(array_to_string(r.affinity_ids, ',') ORDER BY r.rank)
                       FROM worker_rules r WHERE r.worker = w.name), '{}') AS rules,
           w.resources, w.pool, w.apps,
           -- what its running jobs take of what it offers (none unless it offers some)
           CASE WHEN w.resources = '{}' THEN '{}'::jsonb ELSE coalesce(
               (SELECT jsonb_object_agg(u.name, u.amount)
                  FROM (SELECT k.key AS name, sum(k.value::double precision) AS amount
                          FROM jobs j, jsonb_each_text(j.resources) AS k
                         WHERE j.worker = w.name AND j.state = 'WORKING'
                         GROUP BY k.key) u), '{}') END AS in_use
      FROM workers w, planner
     WHERE planner.locked AND w.wanted > 0 AND w.active AND w.state <> 'TIMEOUT'
     ORDER BY w.wanted_at
     LIMIT $1
), sets (ids) AS (
    (SELECT affinity_ids FROM jobs
      WHERE state = 'WAITING' AND NOT paused AND command <> '' AND held_until = 0
      ORDER BY affinity_ids LIMIT 1)
    UNION ALL
    SELECT (SELECT j.affinity_ids FROM jobs j
             WHERE j.state = 'WAITING' AND NOT j.paused AND j.command <> '' AND j.held_until = 0
               AND j.affinity_ids > sets.ids
             ORDER BY j.affinity_ids LIMIT 1)
      FROM sets WHERE sets.ids IS NOT NULL
)
SELECT planner.locked,
       (SELECT coalesce(jsonb_agg(to_jsonb(d) ORDER BY d.wanted_at), '[]') FROM demand d)
           AS demand,
       (SELECT coalesce(jsonb_agg(jsonb_build_array(a.id, a.name)), '[]')
          FROM affinities a WHERE planner.locked) AS names,
       (SELECT coalesce(jsonb_agg(s.ids), '[]')
          FROM sets s WHERE planner.locked AND s.ids IS NOT NULL) AS sets,
       CASE WHEN planner.locked AND $2::text IS NOT NULL THEN jsonb_build_object(
           'running_by_tag',
           (SELECT coalesce(jsonb_object_agg(x.tag, x.n), '{}')
              FROM (SELECT t.tag, count(*) AS n
                      FROM jobs j, unnest(j.tags) AS t (tag)
                     WHERE j.state = 'WORKING' AND j.command <> ''
                     GROUP BY t.tag) x),
           'running_by_user',
           (SELECT coalesce(jsonb_object_agg(y.user_name, y.n), '{}')
              FROM (SELECT user_name, count(*) AS n FROM jobs
                     WHERE state = 'WORKING' AND command <> ''
                     GROUP BY user_name) y),
           'tag_limits',
           (SELECT coalesce(jsonb_object_agg($2 || t.id, t.max_scheduled), '{}')
              FROM job_types t WHERE t.max_scheduled > 0),
           'held_tags',
           (SELECT coalesce(jsonb_agg($2 || t.id), '[]') FROM job_types t WHERE t.is_paused))
       END AS farm
  FROM planner;

-- name: affinity_names
SELECT id, name FROM affinities;

-- name: ready_top
-- the best $2 ready jobs with the affinity set $1, by hierarchical priority then id.
-- Whether a job has dependencies is a probe of the dependencies index per row read: as
-- an EXISTS, the planner hashed the whole dependencies table for each call, expecting
-- the whole set to be read (8 ms at 30,000 queued jobs, growing with the queue).
-- The workers a job failed on (placement's retry-elsewhere) are a probe of events_job,
-- made only for a job that has run since it was last reset, or that is tagged
-- retry-elsewhere (core/placement.py), whose failures a reset does not forgive (AWE's
-- skip lists outlive a resume): most of a big queue is fresh and untagged. A failed run ended ERROR (a non-zero exit) or TIMEOUT for its timeout;
-- a TIMEOUT for a lost worker (corral_lost_reasons(), migration 0007) and the CANCELED
-- runs of restarts, pauses and resets are not the job's failure.
SELECT j.id, coalesce(j.parent_id, 0) AS parent, j.title, j.user_name, j.priority,
       j.prio_path, j.affinity_ids, j.tags, j.retry, j.run_done, j.timeout, j.resources,
       coalesce((SELECT true FROM dependencies d WHERE d.job_id = j.id LIMIT 1), false)
           AS has_dependencies,
       CASE WHEN j.run_done > 0 OR 'retry-elsewhere' = ANY (j.tags) THEN
           (SELECT array_agg(DISTINCT e.worker) FROM events e
             WHERE e.job_id = j.id
               AND (e.state = 'ERROR'
                    OR (e.state = 'TIMEOUT' AND e.reason <> ALL (corral_lost_reasons()))))
       END AS failed_on
  FROM jobs j
 WHERE j.state = 'WAITING' AND NOT j.paused AND j.command <> '' AND j.held_until = 0
   AND j.affinity_ids = $1
 ORDER BY j.prio_path DESC, j.id
 LIMIT $2;

-- name: ready_after
-- the next $2 after the job ($3 prio_path, $4 id) in the same order, with the same columns
SELECT j.id, coalesce(j.parent_id, 0) AS parent, j.title, j.user_name, j.priority,
       j.prio_path, j.affinity_ids, j.tags, j.retry, j.run_done, j.timeout, j.resources,
       coalesce((SELECT true FROM dependencies d WHERE d.job_id = j.id LIMIT 1), false)
           AS has_dependencies,
       CASE WHEN j.run_done > 0 OR 'retry-elsewhere' = ANY (j.tags) THEN
           (SELECT array_agg(DISTINCT e.worker) FROM events e
             WHERE e.job_id = j.id
               AND (e.state = 'ERROR'
                    OR (e.state = 'TIMEOUT' AND e.reason <> ALL (corral_lost_reasons()))))
       END AS failed_on
  FROM jobs j
 WHERE j.state = 'WAITING' AND NOT j.paused AND j.command <> '' AND j.held_until = 0
   AND j.affinity_ids = $1
   AND (j.prio_path < $3 OR (j.prio_path = $3 AND j.id > $4))
 ORDER BY j.prio_path DESC, j.id
 LIMIT $2;

-- name: dependencies_of
SELECT d.job_id, t.id, t.title, t.state
  FROM dependencies d JOIN jobs t ON t.id = d.depends_on
 WHERE d.job_id = ANY ($1::bigint[]);

-- name: take
-- A pick, in one statement: end the runs $3 of worker $1 that exited with code 0 (as
-- end_run in runs.sql does for one run; the hot path of a worker going from one run to
-- the next, so it costs one round trip and one commit), and hand over the runs assigned
-- to the worker and not handed over yet; when there are none, the worker wants $2 more
-- jobs (none while it is stopped) and the planners hear of it, with this process's
-- mark $4 so that its own planner, already woken, skips the echo. Answers whether the
-- worker is active, the runs as JSON and the events of $3 whose jobs finished; no row for
-- an unknown worker.
-- A legacy worker's pick ($8 true) also makes contact: its machine as told ($5 per-core
-- loads, $6 and $7 free and total memory; a null keeps the figure known). When it still
-- holds a run it was handed (it asks again only once it let go of it), nothing is taken
-- or wanted, and the answer says `held`: the caller drops those runs and picks again.
WITH clock AS MATERIALIZED (
    SELECT corral_clock() AS now
), holding AS MATERIALIZED (
    SELECT $8::boolean AND EXISTS (SELECT 1 FROM events e WHERE e.worker = $1
                                     AND e.state = 'WORKING' AND e.delivered) AS held
), ended AS (
    UPDATE events e
       SET state = 'FINISHED', duration = clock.now - e.start, exit_code = 0, reason = ''
      FROM clock
     WHERE e.id = ANY ($3::bigint[]) AND e.worker = $1 AND e.state = 'WORKING'
    RETURNING e.id, e.job_id
), finished AS (
    UPDATE jobs j
       SET state = 'FINISHED', duration = clock.now - j.start_time, run_done = j.run_done + 1,
           progress = 1, held_until = 0, current_event = NULL, exit_code = 0, reason = ''
      FROM ended, clock WHERE j.id = ended.job_id AND j.current_event = ended.id
    RETURNING ended.id AS event
), runs AS (
    UPDATE events e
       SET delivered = true
      FROM jobs j
     WHERE e.worker = $1 AND e.state = 'WORKING' AND NOT e.delivered
       AND j.id = e.job_id AND j.current_event = e.id AND NOT (SELECT held FROM holding)
    RETURNING e.id AS event, j.id AS job, j.title, j.command, j.dir, j.environment,
              j.user_name AS "user", j.progress_pattern, j.timeout,
              j.job_type_revision_id AS revision, j.service_group AS service
), asked AS (
    UPDATE workers w
       SET wanted = CASE WHEN w.active AND NOT EXISTS (SELECT 1 FROM runs)
                          AND NOT (SELECT held FROM holding) THEN $2 ELSE 0 END,
           wanted_at = clock.now, ping_time = clock.now,
           cpu = coalesce($5::real[], w.cpu), free_memory = coalesce($6::bigint, w.free_memory),
           total_memory = coalesce($7::bigint, w.total_memory),
           finished = w.finished + (SELECT count(*) FROM ended)::integer,
           current_event = CASE WHEN w.current_event IN (SELECT id FROM ended) THEN NULL
                                ELSE w.current_event END,
           state = CASE
               WHEN NOT EXISTS (SELECT 1 FROM ended)
                   THEN CASE WHEN w.state = 'TIMEOUT' THEN 'WAITING' ELSE w.state END
               -- the events as they were before this statement: the ended ones still run
               WHEN EXISTS (SELECT 1 FROM events o WHERE o.worker = w.name
                               AND o.state = 'WORKING' AND o.id <> ALL ($3::bigint[]))
                   THEN 'WORKING'
               ELSE 'WAITING' END
      FROM clock
     WHERE w.name = $1
    RETURNING w.active, w.wanted
)
SELECT active,
       (SELECT coalesce(jsonb_agg(to_jsonb(r) ORDER BY r.event), '[]') FROM runs r) AS runs,
       (SELECT coalesce(array_agg(f.event), '{}') FROM finished f) AS finished,
       (SELECT held FROM holding) AS held,
       CASE WHEN wanted > 0 THEN pg_notify('corral_dispatch', $4) END
  FROM asked;

-- name: undeliver
-- runs handed to a pick that was gone by then: the worker's next pick takes them
UPDATE events SET delivered = false WHERE id = ANY ($1::bigint[]) AND state = 'WORKING';

-- name: deliver
-- the runs assigned to a worker and not handed over yet
UPDATE events e
   SET delivered = true
  FROM jobs j
 WHERE e.worker = $1 AND e.state = 'WORKING' AND NOT e.delivered
   AND j.id = e.job_id AND j.current_event = e.id
RETURNING e.id AS event, j.id AS job, j.title, j.command, j.dir, j.environment,
          j.user_name AS "user", j.progress_pattern, j.timeout,
          j.job_type_revision_id AS revision, j.service_group AS service;
