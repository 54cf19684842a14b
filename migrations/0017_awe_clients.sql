-- What the clients of workflows keep beyond their worker row: why a client was suspended
-- (the worker's `active` is whether it is), and from which run its consecutive failures
-- count again (a resumed client starts afresh; its runs before stay in the events).

ALTER TABLE workflow_clients ADD COLUMN suspend_reason text NOT NULL DEFAULT '';
ALTER TABLE workflow_clients ADD COLUMN streak_after bigint NOT NULL DEFAULT 0;
