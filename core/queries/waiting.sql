-- Why a job waits: the job, what holds it, the workers and the queue ahead of it, each
-- read bounded, so that the answer costs the same with ten queued jobs or a million.

-- name: job
-- The job $1 as dispatch sees it (the columns of ready_top in dispatch.sql), with its
-- state as listings show it and what keeps a leaf out of the ready queue.
SELECT j.id, coalesce(j.parent_id, 0) AS parent, j.title, j.user_name, j.priority,
       j.prio_path, j.affinity_ids, j.tags, j.retry, j.run_done, j.timeout, j.resources,
       j.command, j.paused, j.held_until, j.path, j.total, j.total_finished,
       CASE WHEN j.paused THEN 'PAUSED' ELSE j.state END AS state,
       j.held_until - corral_epoch() AS held_for,
       coalesce((SELECT true FROM dependencies d WHERE d.job_id = j.id LIMIT 1), false)
           AS has_dependencies,
       CASE WHEN j.run_done > 0 OR 'retry-elsewhere' = ANY (j.tags) THEN
           (SELECT array_agg(DISTINCT e.worker) FROM events e
             WHERE e.job_id = j.id
               AND (e.state = 'ERROR'
                    OR (e.state = 'TIMEOUT' AND e.reason <> ALL (corral_lost_reasons()))))
       END AS failed_on
  FROM jobs j
 WHERE j.id = $1;

-- name: unmet_dependencies
-- The jobs that the jobs $1 (a job and its groups) wait for and that have not finished,
-- $2 at most, in id order.
SELECT DISTINCT d.depends_on AS id
  FROM dependencies d JOIN jobs t ON t.id = d.depends_on
 WHERE d.job_id = ANY ($1::bigint[]) AND t.state <> 'FINISHED'
 ORDER BY d.depends_on
 LIMIT $2;

-- name: dependencies_of
-- the jobs $1 depends on, as the dependency policy sees them
SELECT t.id, t.title, t.state
  FROM dependencies d JOIN jobs t ON t.id = d.depends_on
 WHERE d.job_id = $1;

-- name: workers
-- The workers that have not been lost, with their ordered rules, slots, running jobs, what
-- they offer and what their running jobs take of it (as pass_start in dispatch.sql reads
-- the waiting ones), and whether they are active. Each figure is one grouped read of its
-- index (events_running, worker_rules' key, jobs_running) joined by name, not a probe per
-- worker: 10,000 workers are a few hash joins.
SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY x.name), '[]') AS workers
  FROM (SELECT w.name, w.active, w.slots, coalesce(r.n, 0)::integer AS running,
               coalesce(k.rules, '{}') AS rules, w.resources, w.pool, w.apps,
               CASE WHEN w.resources = '{}' THEN '{}'::jsonb
                    ELSE coalesce(u.in_use, '{}') END AS in_use
          FROM workers w
          LEFT JOIN (SELECT e.worker, count(*) AS n FROM events e
                      WHERE e.state = 'WORKING' GROUP BY e.worker) r ON r.worker = w.name
          LEFT JOIN (SELECT wr.worker,
                            array_agg(array_to_string(wr.affinity_ids, ',') ORDER BY wr.rank)
                                AS rules
                       FROM worker_rules wr GROUP BY wr.worker) k ON k.worker = w.name
          LEFT JOIN (SELECT t.worker, jsonb_object_agg(t.name, t.amount) AS in_use
                       FROM (SELECT j.worker, d.key AS name,
                                    sum(d.value::double precision) AS amount
                               FROM jobs j, jsonb_each_text(j.resources) AS d
                              WHERE j.state = 'WORKING' AND j.resources <> '{}'
                              GROUP BY j.worker, d.key) t
                      GROUP BY t.worker) u ON u.worker = w.name
         WHERE w.state <> 'TIMEOUT') x;

-- name: farm
-- The farm as the admit policies see it (as pass_start reads it; $1 the tag prefix of
-- job types' jobs), and the affinity names.
SELECT jsonb_build_object(
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
           (SELECT coalesce(jsonb_object_agg($1 || t.id, t.max_scheduled), '{}')
              FROM job_types t WHERE t.max_scheduled > 0),
           'held_tags',
           (SELECT coalesce(jsonb_agg($1 || t.id), '[]') FROM job_types t WHERE t.is_paused))
           AS farm,
       (SELECT coalesce(jsonb_agg(jsonb_build_array(a.id, a.name)), '[]') FROM affinities a)
           AS names;

-- name: ready_sets
-- The distinct affinity sets of the ready queue, one index probe each (as pass_start).
WITH RECURSIVE sets (ids) AS (
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
SELECT ids FROM sets WHERE ids IS NOT NULL;

-- name: count_set
-- How many ready jobs of the affinity set $1 there are, $2 at most: a range of the
-- jobs_ready index cut short by the limit (the order keeps the planner on the index: a
-- sequential scan would read the whole table when few rows match).
SELECT count(*) FROM (
    SELECT 1 FROM jobs
     WHERE state = 'WAITING' AND NOT paused AND command <> '' AND held_until = 0
       AND affinity_ids = $1
     ORDER BY prio_path DESC, id
     LIMIT $2) s;

-- name: count_ahead
-- How many ready jobs of the affinity set $1 come before the job ($2 prio_path, $3 id) in
-- the dispatcher's order (prio_path descending, then id), $4 at most: the first $4 of the
-- set from the top of jobs_ready down to the job's priority, counting those before it.
-- Conditions on (prio_path, id) as index bounds would not do: the index mixes directions,
-- and an `id < $3` bound lets the planner walk the primary key through every finished job.
SELECT count(*) FILTER (WHERE s.prio_path > $2 OR s.id < $3)
  FROM (SELECT prio_path, id FROM jobs
         WHERE state = 'WAITING' AND NOT paused AND command <> '' AND held_until = 0
           AND affinity_ids = $1 AND prio_path >= $2
         ORDER BY prio_path DESC, id
         LIMIT $4) s;
