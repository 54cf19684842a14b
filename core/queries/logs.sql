-- Job logs, kept as chunks at byte offsets so replicas share them and ranged reads are
-- cheap.

-- name: append
WITH job AS (
    UPDATE jobs SET log_size = log_size + length($2::bytea)
     WHERE id = $1
    RETURNING log_size - length($2::bytea) AS start
)
INSERT INTO job_logs (job_id, byte_offset, data)
SELECT $1, job.start, $2 FROM job
RETURNING byte_offset;

-- name: read_all
SELECT coalesce(string_agg(data, ''::bytea ORDER BY byte_offset), ''::bytea)
  FROM job_logs WHERE job_id = $1;
