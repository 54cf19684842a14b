-- Listing a big farm fast, and affinity names as Coalition allows them.

-- An affinity name is any text without ',' (between the names of a set), ';' or a line
-- break (between a worker's rules), trimmed: "windows project" is one name.
ALTER TABLE affinities DROP CONSTRAINT affinities_name_check;
ALTER TABLE affinities ADD CONSTRAINT affinities_name_check
    CHECK (name <> '' AND name = btrim(name) AND name !~ '[,;[:cntrl:]]');

-- The job's own affinity slots beside their names, for job_list below.
CREATE OR REPLACE VIEW job_view AS
SELECT j.id,
       coalesce(j.parent_id, 0) AS parent,
       j.title,
       j.command,
       j.dir,
       j.environment,
       CASE WHEN j.paused THEN 'PAUSED' ELSE j.state END AS state,
       j.worker,
       j.start_time::bigint AS start_time,
       (CASE
           WHEN j.command = '' THEN j.duration_done
                + (j.total_working * corral_epoch() - j.working_start_sum)
           WHEN j.state = 'WORKING' THEN corral_epoch() - j.start_time
           ELSE j.duration
       END)::bigint AS duration,
       j.ping_time::bigint AS ping_time,
       j.run_done,
       j.retry,
       j.timeout,
       j.priority,
       corral_affinity_names(j.own_affinity_ids) AS affinity,
       j.user_name AS "user",
       j.finished,
       j.errors,
       j.working,
       j.total,
       j.total_finished,
       j.total_errors,
       j.total_working,
       j.url,
       CASE
           WHEN j.command = '' THEN CASE WHEN j.total > 0
                THEN j.total_finished::real / j.total ELSE 0 END
           WHEN j.state = 'FINISHED' THEN 1
           ELSE j.progress
       END::double precision AS progress,
       j.progress_pattern,
       j.paused,
       j.prio_path,
       j.own_affinity_ids
  FROM jobs j;

-- What a listing sends, column for column in the order of core.models.Job, so the server
-- builds each job from its row without a dictionary. `affinity` holds the slot numbers
-- ('3,1'): naming them per row (corral_affinity_names) was half the time of listing
-- 50,000 jobs, and the server names them from one read of the slots instead.
CREATE VIEW job_list AS
SELECT v.id, v.parent, v.title, v.command, v.dir, v.environment, v.state, v.worker,
       v.start_time, v.duration, v.ping_time, v.run_done, v.retry, v.timeout, v.priority,
       array_to_string(v.own_affinity_ids, ',') AS affinity,
       v."user", v.finished, v.errors, v.working, v.total, v.total_finished,
       v.total_errors, v.total_working, v.url, v.progress, v.progress_pattern
  FROM job_view v;

-- Children (and roots, parent 0) in id order: listings, pages and keyset paging walk this
-- instead of sorting. `jobs_parent` stays for the foreign key's cascades.
CREATE INDEX jobs_parent_order ON jobs ((coalesce(parent_id, 0)), id);
