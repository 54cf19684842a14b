-- The roll-up triggers run on every start and end of a run, so what they cost outside
-- their real work counts. Measured at 50 busy workers, each end of a run spent ~2.3 ms in
-- them, most of it planning: plpgsql kept re-planning the roll-up for each new array of
-- changes (custom plans), and corral_recount_deps, a SQL function, is planned on every
-- call, even with no dependents to recount.

-- Every statement in these finds its rows by key or by the path index (enable_seqscan is
-- off), so one generic plan per session serves every call.
ALTER FUNCTION corral_rollup(corral_leaf[]) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION corral_reblock(bigint[]) SET plan_cache_mode = force_generic_plan;

CREATE OR REPLACE FUNCTION corral_recount_deps(ids bigint[]) RETURNS void LANGUAGE plpgsql
    SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    UPDATE jobs j
       SET deps_unmet = c.n
      FROM (SELECT x.id,
                   (SELECT count(*) FROM dependencies d JOIN jobs t ON t.id = d.depends_on
                     WHERE d.job_id = x.id AND t.state <> 'FINISHED')::integer AS n
              FROM jobs x WHERE x.id = ANY (ids)) c
     WHERE j.id = c.id AND j.deps_unmet <> c.n;
END
$$;

-- As before, with two shortcuts: a leaf at the top of the tree has no ancestors to count
-- it, and a job that finished (or stopped being finished) with no dependents has nothing
-- to recount.
CREATE OR REPLACE FUNCTION corral_jobs_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    leaf_changes corral_leaf[];
    dependents bigint[];
    reblock bigint[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg((n.id, n.path, n.state, n.start_time, n.duration, 1)::corral_leaf)
          INTO leaf_changes FROM new_rows n WHERE n.command <> '' AND n.path <> '{}';
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg((o.id, o.path, o.state, o.start_time, o.duration, -1)::corral_leaf)
          INTO leaf_changes FROM old_rows o WHERE o.command <> '' AND o.path <> '{}';
    ELSE
        SELECT array_agg(c.leaf) INTO leaf_changes FROM (
            SELECT (o.id, o.path, o.state, o.start_time, o.duration, -1)::corral_leaf AS leaf
              FROM old_rows o JOIN new_rows n ON n.id = o.id
             WHERE o.command <> '' AND o.path <> '{}'
               AND (n.command = '' OR (o.state, o.path, o.start_time, o.duration)
                    IS DISTINCT FROM (n.state, n.path, n.start_time, n.duration))
            UNION ALL
            SELECT (n.id, n.path, n.state, n.start_time, n.duration, 1)::corral_leaf
              FROM old_rows o JOIN new_rows n ON n.id = o.id
             WHERE n.command <> '' AND n.path <> '{}'
               AND (o.command = '' OR (o.state, o.path, o.start_time, o.duration)
                    IS DISTINCT FROM (n.state, n.path, n.start_time, n.duration))
        ) c;

        SELECT array_agg(DISTINCT d.job_id) INTO dependents
          FROM old_rows o JOIN new_rows n ON n.id = o.id
          JOIN dependencies d ON d.depends_on = n.id
         WHERE (o.state = 'FINISHED') <> (n.state = 'FINISHED');

        SELECT array_agg(n.id) INTO reblock
          FROM old_rows o JOIN new_rows n ON n.id = o.id
         WHERE (o.deps_unmet > 0) <> (n.deps_unmet > 0) OR o.path <> n.path
            OR (o.command = '') <> (n.command = '');
    END IF;

    IF leaf_changes IS NOT NULL THEN
        PERFORM corral_rollup(leaf_changes);
    END IF;
    IF dependents IS NOT NULL THEN
        PERFORM corral_recount_deps(dependents);
    END IF;
    IF reblock IS NOT NULL THEN
        PERFORM corral_reblock(reblock);
    END IF;
    RETURN NULL;
END
$$;
