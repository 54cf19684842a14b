"""The hooks through which plugins decide scheduling policy.

Every hook is a synchronous, pure decision over typed snapshots: it reads what it is
given and answers; all I/O stays in the core. The core keeps hooks off the per-row hot
path: SQL narrows the queue to a few candidates (ready, in hierarchical priority order,
whose affinities fit one of the worker's rules), and hooks decide among those few.

Plugins implement hooks with `core.hookspecs.hookimpl` and register through the `corral`
entry-point group; see docs/plugins.md.
"""

from collections.abc import Mapping, Sequence
from typing import Literal

import msgspec
import pluggy

PROJECT = "corral"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class JobView(msgspec.Struct, frozen=True, kw_only=True):
    """A leaf job as policies see it."""

    id: int
    parent: int
    title: str
    user: str
    priority: int
    # priorities from the root down to this job: the hierarchical ordering key
    prio_path: tuple[int, ...]
    # the job's affinities with those inherited from its groups
    affinities: frozenset[str]
    tags: frozenset[str]
    # automatic re-runs allowed after a failure, and runs done so far
    retry: int
    run_done: int
    # seconds a run may take, 0 for no limit
    timeout: int
    # what a run needs of its worker (cpus, mem in MB, gpus, a licence...): name to amount
    resources: Mapping[str, float] = msgspec.field(default_factory=dict)
    # the workers on which a run of this job failed (a non-zero exit, or stopped for its
    # timeout); runs ended by a lost or restarted worker, a pause or a reset do not count.
    # Read for the candidates of a dispatch pass only (empty in the other hooks), and only
    # for jobs that have run since their last reset or are tagged `retry-elsewhere`.
    failed_on: frozenset[str] = frozenset()


class WorkerView(msgspec.Struct, frozen=True, kw_only=True):
    """A worker asking for work."""

    name: str
    # ordered affinity rules: the worker prefers jobs fitting the first
    rules: tuple[frozenset[str], ...]
    slots: int
    running: int
    # what it offers the jobs that declare needs, and what its running jobs (before this
    # pass) take of it
    resources: Mapping[str, float] = msgspec.field(default_factory=dict)
    in_use: Mapping[str, float] = msgspec.field(default_factory=dict)
    # the pool (group) it belongs to, "" for none, and the applications it runs ("*": any)
    pool: str = ""
    apps: frozenset[str] = frozenset()


class FarmView(msgspec.Struct, frozen=True, kw_only=True):
    """What runs on the whole farm right now, including what this pass already assigned,
    and the limits and holds that the database keeps on tags (those of job types: at most
    `max_scheduled` of a type's jobs running, none while it is paused)."""

    running_by_tag: Mapping[str, int]
    running_by_user: Mapping[str, int]
    running: int
    # most jobs carrying the tag that may run at once
    tag_limits: Mapping[str, int] = msgspec.field(default_factory=dict)
    # tags whose jobs may not start now
    held_tags: frozenset[str] = frozenset()
    # what the jobs this pass already gave each worker need of it: worker to resources
    assigned: Mapping[str, Mapping[str, float]] = msgspec.field(default_factory=dict)


class DependencyView(msgspec.Struct, frozen=True, kw_only=True):
    """A job another job depends on."""

    id: int
    title: str
    state: str


class RunView(msgspec.Struct, frozen=True, kw_only=True):
    """A run of a job on a worker."""

    job: JobView
    worker: str
    # the run's event id
    event: int
    started: float
    # seconds since it started
    elapsed: float


class RunOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """How a run ended."""

    run: RunView
    # the process's exit code; None when the run was killed for its timeout
    exit_code: int | None
    timed_out: bool


class RetryDecision(msgspec.Struct, frozen=True, kw_only=True):
    """What happens to a job whose run failed."""

    action: Literal["requeue", "fail"]
    # seconds before a requeued job may run again
    delay: float = 0.0


class TimeoutDecision(msgspec.Struct, frozen=True, kw_only=True):
    """A running job that must stop; `reason` is shown to people and in the worker's log."""

    reason: str


JobState = Literal["WAITING", "PENDING", "WORKING", "FINISHED", "ERROR"]
WorkerState = Literal["WAITING", "WORKING", "TIMEOUT"]


@hookspec(firstresult=True)
def corral_affinity_rank(affinities: frozenset[str], worker: WorkerView) -> int | None:
    """May `worker` take jobs with these affinities (their own and their groups'), and how
    much does it want them?

    Called during a dispatch pass once per worker and per distinct affinity set among the
    ready jobs (there are few), before any job is read: only the sets answered here are
    taken from the queue. Answer None to refuse, or a rank: lower ranks are offered first,
    before priority (Coalition's "rule order before priority"). The first plugin answering
    decides; with no plugin implementing it, every worker takes every job. The built-in
    `affinity` plugin answers the index of the first worker rule containing all the
    affinities, and `len(rules)` for jobs with none.
    """


@hookspec(firstresult=True)
def corral_dependencies_met(job: JobView, dependencies: Sequence[DependencyView]) -> bool | None:
    """Are the dependencies of `job` satisfied, so it may run?

    Called during a dispatch pass for each candidate that has dependencies of its own.
    The database already keeps a job PENDING while a dependency is not FINISHED, so the
    candidates reaching this hook have their dependencies finished; answer False to hold
    one back for a further reason (an output not yet published, say), True or None to
    let it run. The first plugin answering decides; the built-in `dependencies` plugin
    answers whether every dependency is FINISHED.
    """


@hookspec
def corral_admit(job: JobView, worker: WorkerView, farm: FarmView) -> str | None:
    """Should `job` be held back from `worker` now?

    Called during a dispatch pass for each candidate that a worker may take, in the order
    it would be offered, with the farm as it will be once this pass's earlier assignments
    run. Answer a short reason to hold the job back for this pass (it stays queued), or
    None to let it through. Every plugin is asked; one reason is enough to hold it. Used for
    limits (licences per tag, jobs per user, time-of-day rules) and placement (a job's
    pools and applications against the worker's, the workers it failed on).
    """


@hookspec(firstresult=True)
def corral_order(candidates: Sequence[JobView], worker: WorkerView) -> Sequence[JobView] | None:
    """Put the candidates of one affinity rank for one worker in the order they should be
    offered.

    Called during a dispatch pass per worker and rank, with the best few jobs of the queue
    for that worker (the database picks them by hierarchical priority, then id). Answer the
    same jobs in the order to offer them (a subset drops the rest for this pass), or None
    to keep them in id order. The first plugin answering decides; the built-in `ordering`
    plugin sorts by hierarchical priority, then first come first served.
    """


@hookspec(firstresult=True)
def corral_retry(job: JobView, outcome: RunOutcome) -> RetryDecision | None:
    """A run of `job` failed (non-zero exit or timeout): run it again?

    Called once per failed run, before the job's state changes. Answer a decision, or None
    to let the next plugin decide; if none answers, the job goes to ERROR. The built-in
    `retry` plugin requeues while `job.run_done` (counting this run) is at most `job.retry`,
    after an optional backoff. A job whose worker was lost is queued again without asking,
    the job not having failed; one made from a job type fails instead once it has run its
    type's `max_tries` times.
    """


@hookspec(firstresult=True)
def corral_timeout(run: RunView, now: float) -> TimeoutDecision | None:
    """Has this running job overrun?

    Called by the timeout pass for every running job. Answer a decision to stop it (the
    worker kills the process at its next heartbeat and the retry decision applies), or None
    to let it run. The built-in `timeout` plugin stops runs longer than `job.timeout`.
    """


@hookspec
def corral_job_state_changed(job: JobView, old: JobState, new: JobState) -> None:
    """A leaf job moved from `old` to `new` through a run: it started (WAITING to WORKING)
    or its run ended (WORKING to FINISHED, ERROR, or WAITING/PENDING when retried, after a
    failure or a timeout). Called after the change is committed, in a thread of its own,
    for notifications (mail, chat, webhooks); it may block. The answer is ignored; an
    exception is logged and ignored. Pause, reset, delete and lost workers move jobs
    without this call."""


@hookspec
def corral_worker_state_changed(worker: str, old: WorkerState, new: WorkerState) -> None:
    """A worker stopped answering: `new` is TIMEOUT, `old` what it was doing (WAITING or
    WORKING); its jobs are queued again. Called after the change is committed, in a thread
    of its own, for notifications; it may block. The answer is ignored; an exception is
    logged and ignored."""
