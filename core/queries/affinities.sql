-- Named affinities: numbered slots (Coalition has 63) holding a name each.

-- name: select_all
SELECT id, name FROM affinities ORDER BY id;

-- name: select_by_names
SELECT id, name FROM affinities WHERE name = ANY ($1::text[]);

-- name: lock_names
-- creators of new names take turns, so two of them never pick the same free slot
SELECT pg_advisory_xact_lock(7221);

-- name: insert_names
-- new names take slot numbers never used before
INSERT INTO affinities (id, name)
SELECT nextval('affinity_auto_ids'), n.name
  FROM unnest($1::text[]) WITH ORDINALITY AS n (name, ord)
 ORDER BY n.ord
RETURNING id, name;

-- name: delete_slots
DELETE FROM affinities WHERE id = ANY ($1::integer[]);

-- name: insert_slots
INSERT INTO affinities (id, name)
SELECT unnest($1::integer[]), unnest($2::text[]);

-- name: reserve_slots
-- slots named by hand are never handed out to new names
SELECT setval('affinity_auto_ids',
              greatest((SELECT last_value FROM affinity_auto_ids), max(s)))
  FROM unnest($1::integer[]) AS s
HAVING count(*) > 0;
