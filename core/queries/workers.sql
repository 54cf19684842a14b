-- Workers: render nodes and their ordered affinity rules.

-- name: select_workers
SELECT * FROM worker_view ORDER BY name;

-- name: select_existing
SELECT name FROM workers WHERE name = ANY ($1::text[]);

-- name: lock_worker
SELECT name FROM workers WHERE name = $1 FOR NO KEY UPDATE;

-- name: register
-- first contact, or a worker coming back: it is WAITING again unless it runs something;
-- $4 the resources it offers, $5 its pool and $6 its apps (NULL: as they were, none for a
-- new worker)
INSERT INTO workers (name, ip, ping_time, slots, resources, pool, apps)
VALUES ($1, $2, corral_epoch(), $3, $4::jsonb, coalesce($5::text, ''),
        coalesce($6::text[], '{}'))
ON CONFLICT (name) DO UPDATE
   SET ip = excluded.ip, ping_time = excluded.ping_time, slots = excluded.slots,
       resources = excluded.resources,
       pool = coalesce($5::text, workers.pool), apps = coalesce($6::text[], workers.apps),
       state = CASE WHEN workers.state = 'TIMEOUT' THEN 'WAITING' ELSE workers.state END;

-- name: contact
-- A one-slot worker that makes contact without registering first (a legacy worker): it is
-- known from now on (from address $2), alive, and its machine as told ($3 per-core loads,
-- $4 and $5 free and total memory; a null keeps the figure known). Answers whether it has
-- a run going, from before this statement (the one index probe of events_running).
INSERT INTO workers AS w (name, ip, ping_time, slots, cpu, free_memory, total_memory)
VALUES ($1, $2, corral_epoch(), 1, coalesce($3::real[], '{}'), coalesce($4::bigint, 0),
        coalesce($5::bigint, 0))
ON CONFLICT (name) DO UPDATE
   SET ping_time = excluded.ping_time, cpu = coalesce($3, w.cpu),
       free_memory = coalesce($4, w.free_memory), total_memory = coalesce($5, w.total_memory),
       state = CASE WHEN w.state = 'TIMEOUT' THEN 'WAITING' ELSE w.state END
RETURNING EXISTS (SELECT 1 FROM events e WHERE e.worker = $1 AND e.state = 'WORKING') AS busy;

-- name: delete_rules
DELETE FROM worker_rules WHERE worker = $1;

-- name: insert_rules
-- $2: one text per rule, the affinity ids joined by commas (rules differ in length)
INSERT INTO worker_rules (worker, rank, affinity_ids)
SELECT $1, r.ord - 1, string_to_array(r.ids, ',')::integer[]
  FROM unnest($2::text[]) WITH ORDINALITY AS r (ids, ord);

-- name: set_active
UPDATE workers SET active = $2 WHERE name = ANY ($1::text[]);

-- name: delete_workers
DELETE FROM workers WHERE name = ANY ($1::text[]);
