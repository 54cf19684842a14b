-- Dispatch: workers waiting for work, runs handed to them, delayed retries, the reason a
-- run was stopped, a wake-up for the planner whenever a job becomes ready; and two
-- details the worker protocols need (64-bit exit codes, fresh affinity slot numbers).

-- free slots a waiting pick asks to fill, and since when it waits (oldest served first)
ALTER TABLE workers ADD COLUMN wanted integer NOT NULL DEFAULT 0 CHECK (wanted >= 0);
ALTER TABLE workers ADD COLUMN wanted_at double precision NOT NULL DEFAULT 0;
CREATE INDEX workers_wanting ON workers (wanted_at) WHERE wanted > 0;

-- a run assigned by the planner and not yet handed to its worker's pick
ALTER TABLE events ADD COLUMN delivered boolean NOT NULL DEFAULT false;
CREATE INDEX events_undelivered ON events (worker) WHERE state = 'WORKING' AND NOT delivered;
-- why a run ended other than by its own exit (paused, reset, timeout, ...)
ALTER TABLE events ADD COLUMN reason text NOT NULL DEFAULT '';
-- as reported: Windows crash codes such as 0xC0000005 do not fit 32 bits
ALTER TABLE events ALTER COLUMN exit_code TYPE bigint;
CREATE INDEX events_running ON events (worker) WHERE state = 'WORKING';

-- a failed job requeued after a backoff may not run before this time
ALTER TABLE jobs ADD COLUMN held_until double precision NOT NULL DEFAULT 0;
CREATE INDEX jobs_held ON jobs (held_until) WHERE held_until > 0;

-- The ready queue, by affinity set then hierarchical priority: the planner walks the few
-- distinct affinity sets and takes the top of each that fits a worker, so a pick costs
-- the same with a thousand queued jobs or a million.
DROP INDEX jobs_ready;
CREATE INDEX jobs_ready ON jobs (affinity_ids, prio_path DESC, id)
    WHERE state = 'WAITING' AND NOT paused AND command <> '' AND held_until = 0;

CREATE FUNCTION corral_notify_ready() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM 1 FROM new_rows n
         WHERE n.state = 'WAITING' AND NOT n.paused AND n.command <> '' AND n.held_until = 0
         LIMIT 1;
    ELSE
        PERFORM 1 FROM new_rows n JOIN old_rows o ON o.id = n.id
         WHERE n.state = 'WAITING' AND NOT n.paused AND n.command <> '' AND n.held_until = 0
           AND NOT (o.state = 'WAITING' AND NOT o.paused AND o.command <> '' AND o.held_until = 0)
         LIMIT 1;
    END IF;
    IF FOUND THEN
        -- delivered at commit, once per transaction however many jobs became ready
        PERFORM pg_notify('corral_dispatch', '');
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_ready_inserted AFTER INSERT ON jobs
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION corral_notify_ready();
CREATE TRIGGER jobs_ready_updated AFTER UPDATE ON jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION corral_notify_ready();

-- The moment a statement runs, not the start of its transaction: a run's start and end
-- must come after the commits that allowed them (a frame starts after its dependency
-- finished, even when the planner's transaction began a little earlier).
CREATE FUNCTION corral_clock() RETURNS double precision
    LANGUAGE sql VOLATILE AS $$ SELECT extract(epoch FROM clock_timestamp())::double precision $$;

-- Names created on first use take slot numbers never used before, above the 64 slots that
-- Coalition's clients manage, so clearing a slot never hands its number (still held by
-- the jobs that had it) to an unrelated new name.
CREATE SEQUENCE affinity_auto_ids;
SELECT setval('affinity_auto_ids', greatest((SELECT max(id) FROM affinities), 64));
