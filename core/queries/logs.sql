-- Job logs, kept as chunks at byte offsets so replicas share them and ranged reads are
-- cheap. Each chunk is of one stream (stdout or stderr, migration 0010) and has two
-- offsets: byte_offset in the merged log, in arrival order, and stream_offset within its
-- stream. jobs.log_size is the merged log's size, jobs.stderr_size stderr's; stdout's is
-- their difference.

-- name: append
-- one chunk of stdout; $2 must not be empty
WITH job AS (
    UPDATE jobs SET log_size = log_size + length($2::bytea)
     WHERE id = $1
    RETURNING log_size - length($2::bytea) AS start,
              log_size - length($2::bytea) - stderr_size AS stream_start
)
INSERT INTO job_logs (job_id, byte_offset, stream, stream_offset, data)
SELECT $1, job.start, 'stdout', job.stream_start, $2 FROM job
RETURNING byte_offset;

-- name: append_chunks
-- the chunks of one report, streams $2 and data $3 pairwise, in the order they arrived:
-- one statement however many there are. The job's row is updated first, so concurrent
-- appends to one job queue on its lock and each starts where the last one ended. The
-- same update is the heartbeat of the run $4 that brought them (as ping_job in runs.sql),
-- with the progress $5 when the log told it: one write of the job's row, not two.
WITH piece AS (
    SELECT p.ord, p.stream, p.data, length(p.data)::bigint AS size
      FROM unnest($2::text[], $3::bytea[]) WITH ORDINALITY AS p (stream, data, ord)
     -- an empty chunk would take the offset of the next one
     WHERE length(p.data) > 0
), added AS (
    SELECT coalesce(sum(size), 0)::bigint AS total,
           coalesce(sum(size) FILTER (WHERE stream = 'stderr'), 0)::bigint AS stderr
      FROM piece
), job AS (
    UPDATE jobs SET log_size = log_size + added.total,
                    stderr_size = stderr_size + added.stderr,
                    ping_time = CASE WHEN current_event = $4 THEN corral_epoch()
                                     ELSE ping_time END,
                    progress = CASE WHEN current_event = $4 THEN coalesce($5::real, progress)
                                    ELSE progress END
      FROM added
     WHERE id = $1 AND added.total > 0
    RETURNING log_size - added.total AS start,
              stderr_size - added.stderr AS stderr_start,
              log_size - stderr_size - (added.total - added.stderr) AS stdout_start
)
INSERT INTO job_logs (job_id, byte_offset, stream, stream_offset, data)
SELECT $1,
       job.start + (sum(piece.size) OVER merged)::bigint - piece.size,
       piece.stream,
       CASE piece.stream WHEN 'stderr' THEN job.stderr_start ELSE job.stdout_start END
           + (sum(piece.size) OVER by_stream)::bigint - piece.size,
       piece.data
  FROM piece, job
WINDOW merged AS (ORDER BY piece.ord ROWS UNBOUNDED PRECEDING),
       by_stream AS (PARTITION BY piece.stream ORDER BY piece.ord ROWS UNBOUNDED PRECEDING);

-- name: read_all
SELECT coalesce(string_agg(data, ''::bytea ORDER BY byte_offset), ''::bytea)
  FROM job_logs WHERE job_id = $1;

-- name: read_stream
-- bytes $3 up to $3 + $4 (both cut to the size) of stream $2 of job $1, the start after
-- the cut and the stream's size; no row if the job does not exist. Only the chunks that
-- overlap the range are read (job_logs_stream), each cut to it.
WITH job AS (
    SELECT CASE $2::text WHEN 'stderr' THEN stderr_size ELSE log_size - stderr_size END
           AS size
      FROM jobs WHERE id = $1
), span AS (
    SELECT size, least($3::bigint, size) AS s,
           least($3::bigint, size) + least($4::bigint, size - least($3::bigint, size)) AS e
      FROM job
)
SELECT span.size, span.s AS start,
       (SELECT coalesce(string_agg(
                   substring(l.data
                             FROM least(greatest(span.s - l.stream_offset, 0), length(l.data))::integer + 1
                             FOR least(span.e - greatest(span.s, l.stream_offset), length(l.data))::integer),
                   ''::bytea ORDER BY l.stream_offset), ''::bytea)
          FROM job_logs l
         WHERE l.job_id = $1 AND l.stream = $2::text
           AND span.s < span.e
           AND l.stream_offset < span.e
           -- from the chunk that holds byte s
           AND l.stream_offset >= (SELECT coalesce(max(h.stream_offset), 0) FROM job_logs h
                                    WHERE h.job_id = $1 AND h.stream = $2::text
                                      AND h.stream_offset <= span.s)) AS data
  FROM span;

-- name: read_merged
-- as read_stream, of the merged log (both streams in arrival order), by job_logs' key
WITH span AS (
    SELECT log_size AS size, least($2::bigint, log_size) AS s,
           least($2::bigint, log_size) + least($3::bigint, log_size - least($2::bigint, log_size))
           AS e
      FROM jobs WHERE id = $1
)
SELECT span.size, span.s AS start,
       (SELECT coalesce(string_agg(
                   substring(l.data
                             FROM least(greatest(span.s - l.byte_offset, 0), length(l.data))::integer + 1
                             FOR least(span.e - greatest(span.s, l.byte_offset), length(l.data))::integer),
                   ''::bytea ORDER BY l.byte_offset), ''::bytea)
          FROM job_logs l
         WHERE l.job_id = $1
           AND span.s < span.e
           AND l.byte_offset < span.e
           AND l.byte_offset >= (SELECT coalesce(max(h.byte_offset), 0) FROM job_logs h
                                  WHERE h.job_id = $1 AND h.byte_offset <= span.s)) AS data
  FROM span;

-- name: stream_size
-- the size of stream $2 of job $1; no row if the job does not exist
SELECT CASE $2::text WHEN 'stderr' THEN stderr_size ELSE log_size - stderr_size END AS size
  FROM jobs WHERE id = $1;
