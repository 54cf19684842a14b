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

-- name: ensure
INSERT INTO workers (name, ip, ping_time, slots)
VALUES ($1, $2, corral_epoch(), $3)
ON CONFLICT (name) DO NOTHING;

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
