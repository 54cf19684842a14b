-- Service jobs: their definitions, their desired counts, their allocations (one leaf run
-- each) and the reconcile pass that keeps each task group at its count.

-- name: lock_definitions
-- taken by whoever writes definitions, so server processes starting together sync one
-- after the other
SELECT pg_advisory_xact_lock(7221, 6);

-- name: try_lock_reconcile
SELECT pg_try_advisory_xact_lock(7221, 5);

-- name: select_definitions
SELECT s.id, s.name, s.source, s.removed, s.autostart,
       coalesce(jsonb_agg(jsonb_build_object('id', g.id, 'name', g.name, 'removed', g.removed))
                FILTER (WHERE g.id IS NOT NULL), '[]') AS groups
  FROM services s LEFT JOIN service_groups g ON g.service_id = s.id
 GROUP BY s.id;

-- name: insert_service
INSERT INTO services (id, name, autostart, source) VALUES ($1, $2, $3, $4);

-- name: update_service
-- only when it changes: every write moves the jobs index, and long polls answer
UPDATE services SET autostart = $2, source = $3, removed = false
 WHERE id = $1 AND (autostart, source, removed) IS DISTINCT FROM ($2, $3, false);

-- name: insert_group
INSERT INTO service_groups (id, service_id, name, command, affinity, secrets, count_init,
                            count_max)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8);

-- name: update_group
-- a changed definition: later allocations run the new command; a count above a lowered
-- count_max is cut down to it
UPDATE service_groups
   SET command = $2, affinity = $3, secrets = $4, count_init = $5, count_max = $6,
       count = least(count, $6), removed = false
 WHERE id = $1
   AND (command, affinity, secrets, count_init, count_max, count, removed)
       IS DISTINCT FROM ($2, $3, $4, $5, $6, least(count, $6), false);

-- name: remove_groups
-- groups gone from their definition: stopped, and no longer listed
UPDATE service_groups SET removed = true, count = 0 WHERE id = ANY ($1::bigint[]) AND NOT removed;

-- name: remove_services
-- services gone from the config file: stopped, and dropped once their allocations end
UPDATE services SET removed = true, active = false WHERE id = ANY ($1::bigint[]) AND NOT removed;

-- name: zero_counts
UPDATE service_groups SET count = 0 WHERE service_id = ANY ($1::bigint[]) AND count <> 0;

-- name: groups
-- Every listed group with its summary, and the jobs index read in the same snapshot.
-- Bins: queued (waiting to be handed over), starting (handed over, no heartbeat has
-- named its run yet), running.
SELECT s.id AS service_id, s.name AS service, s.active, s.autostart, s.removed AS service_removed,
       g.id, g.name, g.count, g.count_init, g.count_max, g.complete, g.failed, g.lost,
       coalesce(b.queued, 0) AS queued, coalesce(b.starting, 0) AS starting,
       coalesce(b.running, 0) AS running,
       (SELECT n FROM service_index) AS index
  FROM services s
  JOIN service_groups g ON g.service_id = s.id AND NOT g.removed
  LEFT JOIN LATERAL (
      SELECT count(*) FILTER (WHERE j.state IN ('WAITING', 'PENDING')) AS queued,
             count(*) FILTER (WHERE j.state = 'WORKING' AND j.ping_time <= j.start_time)
                 AS starting,
             count(*) FILTER (WHERE j.state = 'WORKING' AND j.ping_time > j.start_time)
                 AS running
        FROM service_allocations a JOIN jobs j ON j.id = a.job_id
       WHERE a.group_id = g.id AND a.outcome IS NULL
  ) b ON true
 WHERE ($1::text IS NULL OR s.name = $1)
 ORDER BY s.name, g.name;

-- name: index
SELECT n FROM service_index;

-- name: lock_service
SELECT id, active FROM services WHERE name = $1 FOR UPDATE;

-- name: live_count
-- allocations of the service $1 not ended
SELECT count(*) FROM service_allocations a JOIN service_groups g ON g.id = a.group_id
 WHERE g.service_id = $1 AND a.outcome IS NULL;

-- name: activate
-- a dead service starts: every group at its initial count
WITH started AS (
    UPDATE services SET active = true WHERE id = $1
)
UPDATE service_groups SET count = count_init WHERE service_id = $1 AND NOT removed;

-- name: deactivate
WITH stopped AS (
    UPDATE services SET active = false WHERE id = $1
)
UPDATE service_groups SET count = 0 WHERE service_id = $1 AND count <> 0;

-- name: lock_group
SELECT g.id, g.count, g.count_max FROM service_groups g
 WHERE g.service_id = $1 AND g.name = $2 AND NOT g.removed
   FOR UPDATE;

-- name: set_count
UPDATE service_groups SET count = $2 WHERE id = $1;

-- name: autostart_services
SELECT name FROM services WHERE autostart AND NOT removed ORDER BY name;

-- name: service_names
SELECT name FROM services WHERE NOT removed ORDER BY name;

-- name: reconcile_groups
-- every group, what it wants (0 unless its service is active) and what its next
-- allocation runs
SELECT g.id, g.name, s.name AS service, g.command, g.affinity,
       CASE WHEN s.active AND NOT s.removed AND NOT g.removed THEN g.count ELSE 0 END AS wanted,
       g.hold_until
  FROM service_groups g JOIN services s ON s.id = g.service_id;

-- name: live_allocations
-- the allocations not ended, with their bins (0 queued, 1 starting, 2 running)
SELECT a.group_id, a.job_id, a.created,
       CASE WHEN j.state = 'WORKING' AND j.ping_time > j.start_time THEN 2
            WHEN j.state = 'WORKING' THEN 1
            ELSE 0 END AS bin
  FROM service_allocations a JOIN jobs j ON j.id = a.job_id
 WHERE a.outcome IS NULL;

-- name: add_allocations
-- the leaves $2 become allocations $1 of group $3, held until $4 (a failing group's
-- backoff) when that is still ahead
WITH marked AS (
    UPDATE jobs SET service_group = $3,
                    held_until = CASE WHEN $4::double precision > corral_epoch() THEN $4 ELSE 0 END
     WHERE id = ANY ($2::bigint[])
)
INSERT INTO service_allocations (id, job_id, group_id)
SELECT * FROM unnest($1::uuid[], $2::bigint[]) AS a (id, job_id), (SELECT $3::bigint) g;

-- name: end_queued
-- allocations $1 (leaf ids) not yet handed to a worker end complete (stopped on purpose)
UPDATE jobs SET state = 'FINISHED'
 WHERE id = ANY ($1::bigint[]) AND service_group IS NOT NULL AND state IN ('WAITING', 'PENDING');

-- name: reset_streaks
-- a group whose allocation has run for 30 s is no longer failing
UPDATE service_groups g SET streak = 0
 WHERE g.streak > 0
   AND EXISTS (SELECT 1 FROM service_allocations a JOIN jobs j ON j.id = a.job_id
                WHERE a.group_id = g.id AND a.outcome IS NULL AND j.state = 'WORKING'
                  AND j.start_time <= corral_epoch() - 30);

-- name: surplus_dead
-- the leaves of ended allocations beyond the $1 most recent of each group
SELECT job_id FROM (
    SELECT a.job_id, row_number() OVER (PARTITION BY a.group_id ORDER BY a.created DESC) AS rank
      FROM service_allocations a WHERE a.outcome IS NOT NULL
) ranked
 WHERE rank > $1;

-- name: finished_removed
-- removed services none of whose allocations is live: their trees go
SELECT s.id FROM services s
 WHERE s.removed
   AND NOT EXISTS (SELECT 1 FROM service_allocations a JOIN service_groups g ON g.id = a.group_id
                    WHERE g.service_id = s.id AND a.outcome IS NULL);

-- name: allocations
-- the allocations of group $2 of service $1, newest first, ended ones included
SELECT id, job_id, created, status, service, "group" FROM allocation_view
 WHERE service = $1 AND "group" = $2
 ORDER BY created DESC, id;

-- name: allocation
SELECT id, job_id, created, status, service, "group" FROM allocation_view WHERE alloc = $1::uuid;

-- name: runs_of
-- what the runs of the leaves $1 need from their service as they are handed over
SELECT j.id AS job_id, a.id::text AS alloc, s.name AS service, g.name AS "group", g.secrets
  FROM jobs j
  JOIN service_allocations a ON a.job_id = j.id
  JOIN service_groups g ON g.id = a.group_id
  JOIN services s ON s.id = g.service_id
 WHERE j.id = ANY ($1::bigint[]);
