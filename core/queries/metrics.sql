-- The farm's figures for monitoring, read at each scrape.

-- name: farm
-- Jobs by state without a scan of the jobs: every group keeps the counts of its leaves,
-- so the roots' counters and the leaves that are roots themselves (one index range of
-- jobs_parent_order) give the farm's; workers by state from their few rows.
WITH roots AS (
    SELECT command, state, total, total_finished, total_errors, total_working, total_pending
      FROM jobs WHERE coalesce(parent_id, 0) = 0
), leaves AS (
    SELECT
        sum(CASE WHEN command = '' THEN total_finished
                 ELSE (state = 'FINISHED')::integer END) AS finished,
        sum(CASE WHEN command = '' THEN total_errors ELSE (state = 'ERROR')::integer END)
            AS errors,
        sum(CASE WHEN command = '' THEN total_working
                 ELSE (state = 'WORKING')::integer END) AS working,
        sum(CASE WHEN command = '' THEN total_pending
                 ELSE (state = 'PENDING')::integer END) AS pending,
        sum(CASE WHEN command = '' THEN total ELSE 1 END) AS every
      FROM roots
)
SELECT jsonb_build_object(
           'FINISHED', coalesce(finished, 0), 'ERROR', coalesce(errors, 0),
           'WORKING', coalesce(working, 0), 'PENDING', coalesce(pending, 0),
           'WAITING', coalesce(every - finished - errors - working - pending, 0)
       )::text AS jobs,
       (SELECT coalesce(jsonb_object_agg(s.state, s.n), '{}')::text
          FROM (SELECT CASE WHEN NOT active AND state <> 'TIMEOUT' THEN 'STOPPED'
                            ELSE state END AS state, count(*) AS n
                  FROM workers GROUP BY 1) s) AS workers
  FROM leaves;
