-- AWE jobs beyond submission (docs/awe.md): listings ordered, filtered and counted by
-- PostgreSQL, the states of jobs, tasks and workunits defined once here, completion and
-- update times kept by the tree itself, expiry, data tokens, and the server's debug level.

-- the info alone (small, stored in line): filters, orders and distinct values read it
-- without the tasks, which a big workflow's document is mostly made of
ALTER TABLE workflows ADD COLUMN info jsonb GENERATED ALWAYS AS (document -> 'info') STORED;
-- the job's data token, encrypted by the server (core.secrets: Fernet); NULL: none
ALTER TABLE workflows ADD COLUMN datatoken bytea;

-- what `GET /logger?debug` answers, the same for every server process
ALTER TABLE awe_server ADD COLUMN debug_level integer NOT NULL DEFAULT 0
    CHECK (debug_level BETWEEN 0 AND 3);

-- What a workflow's state is read from, copied from its root group: its state, whether it
-- is paused, whether a leaf of it finished. The state of a job is then a function of its
-- own row (and, only for one that has started, of its tasks): a listing by state, a
-- count of the live jobs or a position reads workflows alone, through workflows_live,
-- never every root of the jobs table.
ALTER TABLE workflows ADD COLUMN root_state text NOT NULL DEFAULT 'WAITING';
ALTER TABLE workflows ADD COLUMN root_paused boolean NOT NULL DEFAULT false;
ALTER TABLE workflows ADD COLUMN root_started boolean NOT NULL DEFAULT false;
UPDATE workflows w
   SET root_state = j.state, root_paused = j.paused, root_started = j.total_finished > 0
  FROM jobs j WHERE j.id = w.job_id;

-- The copy above, kept by the root's changes; and with it the workflow's completion time,
-- set as its root becomes FINISHED and cleared as it stops being so (a recompute), and its
-- update time. Only workflow roots fire it (their meta says so), and only on a change of
-- what is copied or of the finished leaves, not on every counter update of a rollup.
CREATE FUNCTION workflow_tree_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE workflows
       SET root_state = NEW.state, root_paused = NEW.paused,
           root_started = NEW.total_finished > 0,
           updated = corral_epoch(),
           completed = CASE WHEN NEW.state <> 'FINISHED' THEN NULL
                            WHEN OLD.state = 'FINISHED' THEN completed
                            ELSE corral_epoch() END
     WHERE job_id = NEW.id;
    RETURN NULL;
END $$;

CREATE TRIGGER workflow_tree_moved AFTER UPDATE ON jobs
    FOR EACH ROW WHEN (NEW.parent_id IS NULL AND NEW.meta ? 'workflow'
                       AND (OLD.state, OLD.paused, OLD.total_finished)
                           IS DISTINCT FROM (NEW.state, NEW.paused, NEW.total_finished))
    EXECUTE FUNCTION workflow_tree_moved();

UPDATE workflows SET completed = updated WHERE root_state = 'FINISHED' AND completed IS NULL;

-- A task's state, from its group and whether the workflow's root is paused.
CREATE FUNCTION workflow_task_state(state text, paused boolean, finished integer,
                                    root_paused boolean)
    RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN state = 'FINISHED' THEN 'completed'
        WHEN state = 'ERROR' OR paused OR root_paused THEN 'suspend'
        WHEN state = 'WORKING' OR finished > 0 THEN 'in-progress'
        WHEN state = 'PENDING' THEN 'pending'
        ELSE 'queued'
    END
$$;

-- A workunit's state in AWE's work queue, from its leaf (a pause reaches every leaf);
-- `pending`: its task waits for its dependencies, so it is in no queue yet.
CREATE FUNCTION workflow_unit_state(state text, paused boolean)
    RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN state = 'FINISHED' THEN 'done'
        WHEN state = 'WORKING' THEN 'checkout'
        WHEN state = 'PENDING' THEN 'pending'
        WHEN state = 'ERROR' OR paused THEN 'suspend'
        ELSE 'queued'
    END
$$;

-- Every workflow with its state (what core.workflows reads a job's state from). The
-- task scan runs only for a workflow that has started (a leaf finished or runs) and is
-- neither finished nor suspended. The root's state is WORKING exactly when a leaf runs
-- and none failed (corral_group_state).
CREATE VIEW workflow_view AS
SELECT w.job_id, w.id, w.document, w.info, w.state AS kept_state, w.error, w.resumed,
       w.submitted, w.updated, w.completed, w.expiration, w.datatoken IS NOT NULL AS auth,
       w.root_state, w.root_paused,
       CASE
           WHEN w.state IS NOT NULL THEN w.state
           WHEN w.root_state = 'FINISHED' THEN 'completed'
           WHEN w.root_paused OR w.root_state = 'ERROR' THEN 'suspend'
           WHEN NOT w.root_started AND w.root_state <> 'WORKING' THEN 'queued'
           -- OFFSET 0: run for each workflow that gets here, never hashed over every task
           -- of every workflow (the planner cannot see how few get here)
           WHEN EXISTS (SELECT FROM workflow_tasks t JOIN jobs g ON g.id = t.group_id
                         WHERE t.workflow_id = w.job_id
                           AND workflow_task_state(g.state, g.paused, g.total_finished, false)
                               IN ('in-progress', 'completed')
                        OFFSET 0)
               THEN 'in-progress'
           ELSE 'queued'
       END AS job_state
  FROM workflows w;

-- the orders of `GET /job` (workflows_submitted serves info.submittime) ...
CREATE INDEX workflows_updated ON workflows (updated DESC, job_id DESC);
-- (a job not completed sorts as Go's zero time: last when descending)
CREATE INDEX workflows_completed ON workflows (completed DESC NULLS LAST, job_id DESC);
CREATE INDEX workflows_name ON workflows ((info ->> 'name'), job_id);
CREATE INDEX workflows_priority ON workflows (((info ->> 'priority')::integer), job_id);
-- ... its field filters (one jsonpath predicate over the info) ...
CREATE INDEX workflows_info ON workflows USING gin (info jsonb_path_ops);
-- ... and the live jobs (queued, in progress, suspended), a small part of them all: the
-- state views, positions and queue counts read only these (listing_live names them)
CREATE INDEX workflows_live ON workflows (submitted DESC, job_id DESC)
    WHERE state IS NULL AND root_state <> 'FINISHED';
-- the expiry pass
CREATE INDEX workflows_expiring ON workflows (expiration) WHERE expiration IS NOT NULL;
