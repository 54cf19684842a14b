-- Placement: the pool (group) a worker belongs to and the applications it runs (`*`: any),
-- which the `placement` plugin matches against the `pool:` and `app:` tags of jobs. Both
-- are columns of the worker row, so a dispatch pass reads them with its demand for free.
ALTER TABLE workers ADD COLUMN pool text NOT NULL DEFAULT '';
ALTER TABLE workers ADD COLUMN apps text[] NOT NULL DEFAULT '{}';
