-- Client groups (core/client_groups.py): made through AWE's /cgroup, looked up by the hash
-- of the token a client sent.

-- name: create
-- a name taken answers no row: the caller says so, and nothing changes
INSERT INTO client_groups (id, name, token_hash, expiration)
VALUES ($1, $2, $3, now() + interval '10 years')
ON CONFLICT (name) DO NOTHING
RETURNING id, name, token_hash IS NOT NULL AS has_token, created_on, expiration, last_modified

-- name: get
SELECT id, name, token_hash IS NOT NULL AS has_token, created_on, expiration, last_modified
  FROM client_groups WHERE id = $1

-- name: named
SELECT id, name, token_hash IS NOT NULL AS has_token, created_on, expiration, last_modified
  FROM client_groups WHERE name = $1

-- name: page
-- $1 limit, $2 offset, $3 names (NULL: any), $4 ids (NULL: any), $5 the column to order by,
-- $6 descending; a column cannot be a bound parameter, so each has its own CASE, and the
-- id breaks ties so that pages never overlap
SELECT id, name, token_hash IS NOT NULL AS has_token, created_on, expiration, last_modified
  FROM client_groups
 WHERE ($3::text[] IS NULL OR name = ANY($3)) AND ($4::uuid[] IS NULL OR id = ANY($4))
 ORDER BY CASE WHEN $5 = 'name' AND $6 THEN name END DESC,
          CASE WHEN $5 = 'name' AND NOT $6 THEN name END,
          CASE WHEN $5 = 'created_on' AND $6 THEN created_on END DESC,
          CASE WHEN $5 = 'created_on' AND NOT $6 THEN created_on END,
          CASE WHEN $5 = 'expiration' AND $6 THEN expiration END DESC,
          CASE WHEN $5 = 'expiration' AND NOT $6 THEN expiration END,
          CASE WHEN $5 = 'last_modified' AND $6 THEN last_modified END DESC,
          CASE WHEN $5 = 'last_modified' AND NOT $6 THEN last_modified END,
          CASE WHEN $6 THEN id END DESC,
          id
 LIMIT $1 OFFSET $2

-- name: count
SELECT count(*) FROM client_groups
 WHERE ($1::text[] IS NULL OR name = ANY($1)) AND ($2::uuid[] IS NULL OR id = ANY($2))

-- name: delete
DELETE FROM client_groups WHERE id = $1 RETURNING id

-- name: delete_token
-- deleting a token already deleted changes nothing, last_modified included
UPDATE client_groups
   SET token_hash = NULL,
       last_modified = CASE WHEN token_hash IS NULL THEN last_modified ELSE now() END
 WHERE id = $1
RETURNING id, name, token_hash IS NOT NULL AS has_token, created_on, expiration, last_modified

-- name: new_token
-- only a group whose token was deleted gets a new one: no row when it still has one
UPDATE client_groups SET token_hash = $2, last_modified = now()
 WHERE id = $1 AND token_hash IS NULL
RETURNING id, name, token_hash IS NOT NULL AS has_token, created_on, expiration, last_modified

-- name: identify
SELECT name FROM client_groups WHERE token_hash = $1 AND expiration > now()
