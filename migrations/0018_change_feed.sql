-- The change feed of the dashboard (core/changes.py): every statement that changes jobs
-- or workers notifies `corral_changes` with the table's name, so that every server process
-- (whichever one made the change) can tell its open pages to read again.
--
-- Statement-level, like the roll-ups of 0001: a bulk change of 100,000 jobs costs one call,
-- not 100,000. PostgreSQL delivers a channel's identical payloads of one transaction once,
-- at its commit, so a transaction notifies each table at most once however many
-- statements it runs. The payload names the table only: what changed is read again by
-- whoever cares, so no payload can outgrow NOTIFY's 8000 bytes.
--
-- Also a per-minute count of ended runs for the dashboard's chart (farm_minutes in
-- core/queries/dashboard.sql): an index on when each run ended, so the last hour is one
-- index range, never a scan of the events.

CREATE FUNCTION corral_notify_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- a statement that touched no row (an UPDATE matching nothing) changed nothing; the
    -- transition tables are shared with the roll-up triggers of jobs, so reading one here
    -- costs no second copy of the rows
    IF TG_OP = 'DELETE' THEN
        PERFORM 1 FROM old_rows LIMIT 1;
    ELSE
        PERFORM 1 FROM new_rows LIMIT 1;
    END IF;
    IF FOUND THEN
        PERFORM pg_notify('corral_changes', TG_TABLE_NAME);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_feed_inserted AFTER INSERT ON jobs
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION corral_notify_changed();
CREATE TRIGGER jobs_feed_updated AFTER UPDATE ON jobs
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION corral_notify_changed();
CREATE TRIGGER jobs_feed_deleted AFTER DELETE ON jobs
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION corral_notify_changed();

CREATE TRIGGER workers_feed_inserted AFTER INSERT ON workers
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION corral_notify_changed();
CREATE TRIGGER workers_feed_updated AFTER UPDATE ON workers
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION corral_notify_changed();
CREATE TRIGGER workers_feed_deleted AFTER DELETE ON workers
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION corral_notify_changed();

-- when each ended run ended; runs still WORKING are not in it, so a start costs nothing
-- here and an end one entry
CREATE INDEX events_ended ON events ((start + duration)) INCLUDE (state)
    WHERE state <> 'WORKING';
