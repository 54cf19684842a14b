-- Output kept by stream: a run's standard output and standard error arrive apart, and
-- each can be read on its own from any byte, while the merged log (byte_offset, in the
-- order the chunks arrived) stays what the Coalition face shows.
--
-- A chunk is of one stream and has two offsets: in the merged log (byte_offset, as
-- before) and within its stream (stream_offset). Chunks written before are stdout.
ALTER TABLE job_logs
    ADD COLUMN stream text NOT NULL DEFAULT 'stdout'
        CONSTRAINT job_logs_stream_known CHECK (stream IN ('stdout', 'stderr')),
    ADD COLUMN stream_offset bigint;
UPDATE job_logs SET stream_offset = byte_offset;
ALTER TABLE job_logs ALTER COLUMN stream_offset SET NOT NULL;

-- A read of stream S of job J from byte N is a range scan: the chunk holding N is the last
-- one starting at or before N, and the range goes on from there. Unique, so two chunks of
-- one stream can never claim the same bytes.
CREATE UNIQUE INDEX job_logs_stream ON job_logs (job_id, stream, stream_offset);

-- The size of stderr; stdout's is log_size - stderr_size. One column, not two: an append
-- adds to log_size anyway, and a heartbeat with only stdout (most of them) writes the
-- same row it wrote before.
ALTER TABLE jobs ADD COLUMN stderr_size bigint NOT NULL DEFAULT 0;

-- A log emptied (a reset sets log_size to 0 and deletes the chunks) has no stderr either.
-- Here rather than in each statement that empties a log, so none can forget it; the WHEN
-- keeps the function out of every append.
CREATE FUNCTION corral_log_emptied() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.stderr_size := 0;
    RETURN NEW;
END $$;

CREATE TRIGGER jobs_log_emptied BEFORE UPDATE OF log_size ON jobs
    FOR EACH ROW WHEN (NEW.log_size = 0 AND NEW.stderr_size <> 0)
    EXECUTE FUNCTION corral_log_emptied();
