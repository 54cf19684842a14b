-- What the dashboard shows over time.
--
-- When each log chunk arrived: a job's last output is the time of its newest chunk, one
-- step back along job_logs' primary key (job_id, byte_offset), so an append writes
-- nothing more than before (the default fills it in the same INSERT) and the jobs row,
-- which the listings read, is not touched for it. now() is STABLE, so this ALTER
-- rewrites no table: the chunks written before take the migration's time.
ALTER TABLE job_logs ADD COLUMN at double precision NOT NULL DEFAULT corral_epoch();

-- The farm by the minute: queue depth and runs going on, one row per minute however
-- many server processes sample it (the first sample of a minute wins), kept for a day
-- (core/dashboard.py prunes older rows as it samples).
CREATE TABLE farm_samples (
    -- the minute's start, epoch seconds
    minute bigint PRIMARY KEY,
    -- leaves waiting or pending
    queued bigint NOT NULL,
    -- runs going on
    busy bigint NOT NULL,
    -- slots of the workers in dispatch
    slots bigint NOT NULL
);
