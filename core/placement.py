"""Placement tags: how a job says where it may run, for the built-in `placement` plugin
(plugins/placement.py) and for the faces that build such jobs (AWE's client groups, apps
and skip lists). They live in the core so that the faces build them without importing a
plugin.

- `pool:<name>`: the job runs only on a worker of one of the pools its tags name;
- `app:<name>`: it runs only on a worker that runs the application (or any: `*`);
- `retry-elsewhere`: it is never run again on a worker where a run of it failed.
"""

POOL_TAG = "pool:"
APP_TAG = "app:"
RETRY_ELSEWHERE = "retry-elsewhere"
# in a worker's apps: it runs any application
ANY_APP = "*"


def pool_tag(pool: str) -> str:
    """The tag that keeps a job to the workers of `pool` (one of several, when tagged with
    several)."""
    return POOL_TAG + pool


def app_tag(app: str) -> str:
    """The tag that keeps a job to the workers running `app`."""
    return APP_TAG + app


def tagged(tags: frozenset[str], prefix: str) -> frozenset[str]:
    """The names the tags with `prefix` carry: the pools of `pool:` tags, say."""
    return frozenset(t[len(prefix) :] for t in tags if t.startswith(prefix))
