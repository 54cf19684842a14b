-- Why a job stands where it is: its last run's exit code and the reason that run ended,
-- kept on the job by the statements that end runs (they write the job row anyway), so a
-- listing of 50,000 jobs reads no events. A run starting clears them (it has not ended),
-- and so does a reset (the job starts over; its runs stay in events).
-- A leaf's progress is sent rounded to 4 places: the column is a real, and 0.4 read as
-- double precision is 0.4000000059604645. A group's is its exact fraction.

ALTER TABLE jobs ADD COLUMN exit_code bigint, ADD COLUMN reason text NOT NULL DEFAULT '';

UPDATE jobs j
   SET exit_code = last.exit_code, reason = last.reason
  FROM (SELECT DISTINCT ON (job_id) job_id, state, exit_code, reason
          FROM events ORDER BY job_id, id DESC) last
 WHERE last.job_id = j.id AND last.state <> 'WORKING';

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
                THEN j.total_finished::double precision / j.total ELSE 0 END
           WHEN j.state = 'FINISHED' THEN 1
           ELSE round(j.progress::numeric, 4)::double precision
       END AS progress,
       j.progress_pattern,
       j.paused,
       j.prio_path,
       j.own_affinity_ids,
       j.exit_code,
       j.reason
  FROM jobs j;

CREATE OR REPLACE VIEW job_list AS
SELECT v.id, v.parent, v.title, v.command, v.dir, v.environment, v.state, v.worker,
       v.start_time, v.duration, v.ping_time, v.run_done, v.retry, v.timeout, v.priority,
       array_to_string(v.own_affinity_ids, ',') AS affinity,
       v."user", v.finished, v.errors, v.working, v.total, v.total_finished,
       v.total_errors, v.total_working, v.url, v.progress, v.progress_pattern,
       v.exit_code, v.reason
  FROM job_view v;
