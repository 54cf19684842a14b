-- Stored JSON documents by name (core/documents.py).

-- name: get
SELECT body::text FROM documents WHERE name = $1;

-- name: put
INSERT INTO documents (name, body) VALUES ($1, $2::text::json)
ON CONFLICT (name) DO UPDATE SET body = excluded.body, updated_at = now();
