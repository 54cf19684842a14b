-- The AWE node store (core/nodes.py): nodes, the parts of parts nodes, and their bytes in
-- chunks.

-- name: create
INSERT INTO awe_nodes (id, job_id, type, parts_count, file_name)
VALUES ($1, $2, CASE WHEN $3::integer IS NULL THEN 'basic' ELSE 'parts' END, $3, $4)
RETURNING *

-- name: get
SELECT * FROM awe_nodes WHERE id = $1

-- name: lock
SELECT * FROM awe_nodes WHERE id = $1 FOR UPDATE

-- name: parts
SELECT part, size, md5 FROM awe_node_parts WHERE node = $1 ORDER BY part

-- name: part_lock
-- one upload of one part (or of the file, part 0) at a time: a retried workunit's
-- second upload waits for the first instead of colliding with its chunks
SELECT pg_advisory_xact_lock(hashtextextended($1::uuid::text || '/' || $2::integer::text, 12))

-- name: clear_part
DELETE FROM awe_node_chunks WHERE node = $1 AND part = $2

-- name: put_chunk
INSERT INTO awe_node_chunks (node, part, seq, data) VALUES ($1, $2, $3, $4)

-- name: set_file
UPDATE awe_nodes
SET file_name = $2, size = $3, md5 = $4, file_created = now(), last_modified = now(),
    attributes = CASE WHEN $5::boolean THEN $6::jsonb ELSE attributes END
WHERE id = $1
RETURNING *

-- name: set_attributes
UPDATE awe_nodes SET attributes = $2::jsonb, last_modified = now() WHERE id = $1
RETURNING *

-- name: set_parts
UPDATE awe_nodes
SET type = 'parts', parts_count = $2,
    file_name = CASE WHEN $3::text = '' THEN file_name ELSE $3 END, last_modified = now()
WHERE id = $1
RETURNING *

-- name: put_part
INSERT INTO awe_node_parts (node, part, size, md5) VALUES ($1, $2, $3, $4)
ON CONFLICT (node, part) DO UPDATE SET size = EXCLUDED.size, md5 = EXCLUDED.md5

-- name: touch
UPDATE awe_nodes
SET last_modified = now(),
    attributes = CASE WHEN $2::boolean THEN $3::jsonb ELSE attributes END
WHERE id = $1
RETURNING *

-- name: chunks
-- the file's bytes in order, read through a cursor
SELECT data FROM awe_node_chunks WHERE node = $1 ORDER BY part, seq

-- name: of_job
SELECT id FROM awe_nodes WHERE job_id = $1 ORDER BY created_on, id

-- name: delete
DELETE FROM awe_nodes WHERE id = $1

-- name: empty
-- the nodes $1 lose their file and parts: the task they are outputs of runs again and
-- uploads them anew, and until then a download answers that there is no file
WITH parts AS (
    DELETE FROM awe_node_parts WHERE node = ANY ($1::uuid[])
), chunks AS (
    DELETE FROM awe_node_chunks WHERE node = ANY ($1::uuid[])
)
UPDATE awe_nodes SET size = 0, md5 = '', file_created = NULL, last_modified = now()
 WHERE id = ANY ($1::uuid[])
