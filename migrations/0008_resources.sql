-- Resources: what a job needs to run (cpus, mem, gpus, a licence: any name, an amount)
-- and what a worker offers, matched by the `resources` plugin.
ALTER TABLE jobs ADD COLUMN resources jsonb NOT NULL DEFAULT '{}';
ALTER TABLE workers ADD COLUMN resources jsonb NOT NULL DEFAULT '{}';
