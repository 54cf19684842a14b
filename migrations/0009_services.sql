-- Service jobs: groups kept at a desired count of long-running runs (the Genvid face's
-- jobs, and any face's or the native API's). A service is a root group, each of its task
-- groups a child group, and each allocation one leaf under it, run at most once: when its
-- run ends the allocation is over, and the reconcile pass (core/services.py) adds a new
-- leaf if the group wants more.

CREATE TABLE services (
    id bigint PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    name text NOT NULL UNIQUE,
    autostart boolean NOT NULL DEFAULT false,
    -- started (Nomad's registered job); cleared by stop
    active boolean NOT NULL DEFAULT false,
    -- 'config': from the server's config file, 'api': defined through the native API
    source text NOT NULL CHECK (source IN ('config', 'api')),
    -- gone from the config file: stopped, then dropped once its allocations have ended
    removed boolean NOT NULL DEFAULT false
);

CREATE TABLE service_groups (
    id bigint PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    service_id bigint NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    name text NOT NULL,
    command text NOT NULL,
    affinity text NOT NULL DEFAULT '',
    secrets text[] NOT NULL DEFAULT '{}',
    count_init integer NOT NULL CHECK (count_init >= 0),
    count_max integer NOT NULL CHECK (count_max >= 1),
    -- the desired count
    count integer NOT NULL DEFAULT 0 CHECK (count >= 0 AND count <= count_max),
    removed boolean NOT NULL DEFAULT false,
    -- allocations ended, by outcome: they only grow
    complete bigint NOT NULL DEFAULT 0,
    failed bigint NOT NULL DEFAULT 0,
    lost bigint NOT NULL DEFAULT 0,
    -- consecutive failures, and the time before which their replacement may not run
    streak integer NOT NULL DEFAULT 0,
    hold_until double precision NOT NULL DEFAULT 0,
    UNIQUE (service_id, name)
);

CREATE TABLE service_allocations (
    id uuid PRIMARY KEY,
    job_id bigint NOT NULL UNIQUE REFERENCES jobs (id) ON DELETE CASCADE,
    group_id bigint NOT NULL REFERENCES service_groups (id) ON DELETE CASCADE,
    created double precision NOT NULL DEFAULT corral_epoch(),
    -- NULL while live; how it ended
    outcome text CHECK (outcome IN ('complete', 'failed', 'lost')),
    ended double precision
);
CREATE INDEX service_allocations_live ON service_allocations (group_id) WHERE outcome IS NULL;
CREATE INDEX service_allocations_by_group ON service_allocations (group_id, created DESC);

-- an allocation as the faces show it: its status is its outcome once ended, else its bin
CREATE VIEW allocation_view AS
SELECT a.id AS alloc, a.id::text AS id, a.job_id, a.group_id, a.created, a.outcome,
       CASE WHEN a.outcome IS NOT NULL THEN a.outcome
            WHEN j.state = 'WORKING' AND j.ping_time > j.start_time THEN 'running'
            WHEN j.state = 'WORKING' THEN 'starting'
            ELSE 'queued' END AS status,
       s.name AS service, g.name AS "group"
  FROM service_allocations a
  JOIN service_groups g ON g.id = a.group_id
  JOIN services s ON s.id = g.service_id
  JOIN jobs j ON j.id = a.job_id;

-- the task group a leaf is an allocation of (NULL for every other job); the triggers
-- below look at it alone to leave every other job's writes as they were
ALTER TABLE jobs ADD COLUMN service_group bigint;

-- Logger levels: defaults for every allocation, and overrides for one
CREATE TABLE logger_defaults (
    logger text PRIMARY KEY,
    level text NOT NULL
);
CREATE TABLE logger_overrides (
    alloc uuid NOT NULL REFERENCES service_allocations (id) ON DELETE CASCADE,
    logger text NOT NULL,
    level text NOT NULL,
    PRIMARY KEY (alloc, logger)
);

-- The jobs index: a number that grows with every committed change to what the list of
-- services shows, announced on the channel corral_services, so a long poll on any server
-- process wakes on a change made through another.
CREATE TABLE service_index (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    n bigint NOT NULL
);
INSERT INTO service_index VALUES (true, 1);

-- Bumped once per transaction, at its commit (the triggers calling it are deferred): the
-- index row is the last lock a writer takes, so writers never wait on each other for it
-- while holding anything else.
CREATE FUNCTION corral_services_bump() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bumped bigint;
BEGIN
    IF current_setting('corral.services_bumped', true) IS DISTINCT FROM txid_current()::text THEN
        UPDATE service_index SET n = n + 1 RETURNING n INTO bumped;
        PERFORM pg_notify('corral_services', bumped::text);
        PERFORM set_config('corral.services_bumped', txid_current()::text, true);
    END IF;
    RETURN NULL;
END $$;

-- An allocation runs once. When its leaf's run ends, so does the allocation: complete
-- (exit 0, or stopped on purpose), failed (exit non-zero, or could not start) or lost
-- (its worker was lost or registered again). A leaf whose run was stopped does not go
-- back to the queue, whatever stopped it, and an ended one is not queued again.
CREATE FUNCTION corral_allocation_moved() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    run_state text;
    why text;
    ended_as text;
BEGIN
    IF NEW.state IN ('FINISHED', 'ERROR') THEN
        ended_as := CASE WHEN NEW.state = 'FINISHED' THEN 'complete' ELSE 'failed' END;
    ELSIF OLD.state = 'WORKING' THEN
        SELECT e.state, e.reason INTO run_state, why FROM events e WHERE e.id = OLD.current_event;
        ended_as := CASE WHEN why = ANY (corral_lost_reasons()) THEN 'lost'
                        WHEN run_state = 'ERROR' THEN 'failed'
                        ELSE 'complete' END;
    ELSIF OLD.state IN ('FINISHED', 'ERROR') THEN
        -- an ended allocation is not run again (a reset of its leaf through another face)
        UPDATE jobs SET state = OLD.state WHERE id = NEW.id;
        RETURN NULL;
    ELSE
        RETURN NULL;
    END IF;
    -- first, so that the leaf's own move below finds its allocation ended already
    UPDATE service_allocations a SET outcome = ended_as,
                                     ended = corral_epoch()
     WHERE a.job_id = NEW.id AND a.outcome IS NULL;
    IF NEW.state NOT IN ('FINISHED', 'ERROR') THEN
        UPDATE jobs SET state = CASE WHEN ended_as = 'complete' THEN 'FINISHED' ELSE 'ERROR' END
         WHERE id = NEW.id;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER allocation_moved AFTER UPDATE ON jobs
    FOR EACH ROW WHEN (NEW.service_group IS NOT NULL AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION corral_allocation_moved();

-- An allocation's end counts in its group; a failure lengthens the streak, whose n-th
-- (n >= 2) replacement waits min(2^(n-1), 60) s. A run of 30 s or more ends a streak.
CREATE FUNCTION corral_allocation_ended() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ran double precision;
BEGIN
    SELECT j.duration INTO ran FROM jobs j WHERE j.id = NEW.job_id;
    UPDATE service_groups g
       SET complete = g.complete + (NEW.outcome = 'complete')::integer,
           failed = g.failed + (NEW.outcome = 'failed')::integer,
           lost = g.lost + (NEW.outcome = 'lost')::integer,
           streak = CASE WHEN NEW.outcome <> 'failed' THEN
                             CASE WHEN coalesce(ran, 0) >= 30 THEN 0 ELSE g.streak END
                         WHEN coalesce(ran, 0) >= 30 THEN 1
                         ELSE g.streak + 1 END,
           hold_until = CASE WHEN NEW.outcome = 'failed' AND coalesce(ran, 0) < 30 AND g.streak >= 1
                             THEN corral_epoch() + least(2 ^ g.streak, 60)
                             ELSE g.hold_until END
     WHERE g.id = NEW.group_id;
    RETURN NULL;
END $$;

CREATE TRIGGER allocation_ended AFTER UPDATE OF outcome ON service_allocations
    FOR EACH ROW WHEN (OLD.outcome IS NULL AND NEW.outcome IS NOT NULL)
    EXECUTE FUNCTION corral_allocation_ended();

-- What the list shows: a leaf's bin (queued, starting: no heartbeat has named its run
-- yet, running) and the rows of services, groups and allocations.
CREATE CONSTRAINT TRIGGER service_leaf_changed AFTER UPDATE ON jobs
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.service_group IS NOT NULL AND (
        OLD.state IS DISTINCT FROM NEW.state
        OR (OLD.ping_time > OLD.start_time) IS DISTINCT FROM (NEW.ping_time > NEW.start_time)))
    EXECUTE FUNCTION corral_services_bump();
CREATE CONSTRAINT TRIGGER services_changed AFTER INSERT OR UPDATE OR DELETE ON services
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION corral_services_bump();
CREATE CONSTRAINT TRIGGER service_groups_changed
    AFTER INSERT OR UPDATE OR DELETE ON service_groups
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION corral_services_bump();
CREATE CONSTRAINT TRIGGER service_allocations_added AFTER INSERT ON service_allocations
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION corral_services_bump();
