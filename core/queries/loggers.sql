-- Logger levels of service runs: defaults for every allocation, overrides for one.

-- name: defaults
SELECT logger, level FROM logger_defaults ORDER BY logger;

-- name: set_default
INSERT INTO logger_defaults (logger, level) VALUES ($1, $2)
    ON CONFLICT (logger) DO UPDATE SET level = excluded.level;

-- name: delete_default
DELETE FROM logger_defaults WHERE logger = $1;

-- name: allocation_known
SELECT 1 FROM service_allocations WHERE id = $1::uuid;

-- name: overrides
-- every logger with a default or an override for allocation $1: its override, or ''
SELECT coalesce(d.logger, o.logger) AS logger, coalesce(o.level, '') AS level
  FROM logger_defaults d
  FULL JOIN (SELECT logger, level FROM logger_overrides WHERE alloc = $1::uuid) o
    ON o.logger = d.logger
 ORDER BY 1;

-- name: set_override
INSERT INTO logger_overrides (alloc, logger, level) VALUES ($1::uuid, $2, $3)
    ON CONFLICT (alloc, logger) DO UPDATE SET level = excluded.level;

-- name: delete_override
DELETE FROM logger_overrides WHERE alloc = $1::uuid AND logger = $2;

-- name: effective
-- the effective levels (the override, else the default) of the allocations whose leaves
-- are $1, as (job, logger, level) rows
SELECT a.job_id, d.logger, coalesce(o.level, d.level) AS level
  FROM service_allocations a
 CROSS JOIN logger_defaults d
  LEFT JOIN logger_overrides o ON o.alloc = a.id AND o.logger = d.logger
 WHERE a.job_id = ANY ($1::bigint[])
UNION ALL
SELECT a.job_id, o.logger, o.level
  FROM service_allocations a
  JOIN logger_overrides o ON o.alloc = a.id
 WHERE a.job_id = ANY ($1::bigint[])
   AND NOT EXISTS (SELECT 1 FROM logger_defaults d WHERE d.logger = o.logger);
