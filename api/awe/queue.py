"""`/queue`: AWE's queue status, its admin views, and suspending the work queue
(docs/awe.md)."""

import time
from typing import Annotated

from litestar import Controller, Request, Response, get, put
from litestar.datastructures import State
from litestar.exceptions import NotAuthorizedException
from litestar.params import Parameter

from api.access import IdentityDep, access
from api.awe.envelope import Envelope, ok
from api.awe.wire import (
    job_min_out,
    job_queue_out,
    queue_json,
    queue_text,
    task_out,
    workunit_out,
)
from api.params import CoreDep
from core.errors import Invalid
from core.workflows import UnitState

Query = Annotated[str | None, Parameter(required=False)]
# the work queue's views: the workunit states each lists
WORK_VIEWS: dict[str, tuple[UnitState, ...]] = {
    "workall": ("queued", "checkout", "suspend"),
    "workqueue": ("queued",),
    "workcheckout": ("checkout",),
    "worksuspend": ("suspend",),
}
ADMIN_VIEWS = ("job", "task", *WORK_VIEWS, "client", "clientgroup")
UNSUPPORTED = "requested queue operation not supported"


class QueueController(Controller):
    path = "/queue"

    @get("/", opt=access("read"))
    async def status(
        self,
        core: CoreDep,
        identity: IdentityDep,
        request: Request[object, object, State],
        clientgroup: Query = None,
    ) -> Response[Envelope]:
        """The queue's status as text, or as JSON with `json`; the admin views `job`,
        `task`, `workall`, `workqueue`, `workcheckout`, `worksuspend`, `client` and
        `clientgroup=<group>`."""
        query = request.query_params
        flows = core.workflows
        if "json" in query:
            return ok(queue_json(await flows.queue_counts()))
        view = next((v for v in ADMIN_VIEWS if v in query), None)
        if view is None:
            if query:
                raise Invalid(UNSUPPORTED)
            return ok(queue_text(await flows.queue_counts(), time.time()))
        if identity.role != "admin":
            raise NotAuthorizedException("No Authorization")
        if view == "job":
            return ok(job_queue_out(await flows.live()))
        if view == "task":
            return ok([task_out(w, t) for w in await flows.live() for t in w.tasks])
        if view in WORK_VIEWS:
            units = await flows.queued_units(WORK_VIEWS[view])
            return ok([workunit_out(q.unit, q.client, q.state) for q in units])
        if view == "client":
            return ok({c.name: _client(c.profile, c.busy, c.suspended)
                       for c in await flows.client_states()})  # fmt: skip
        if not clientgroup:
            raise Invalid("lacking clientgroup name")
        return ok([job_min_out(w) for w in await flows.group_queue(clientgroup)])

    @put("/", status_code=200, opt=access("admin"))
    async def change(
        self, core: CoreDep, request: Request[object, object, State]
    ) -> Response[Envelope]:
        """`suspend`: no workunit is checked out until `resume`."""
        query = request.query_params
        if "suspend" in query:
            await core.workflows.set_queue_suspended(True)
            return ok("work queue suspended")
        if "resume" in query:
            await core.workflows.set_queue_suspended(False)
            return ok("work queue resumed")
        raise Invalid(UNSUPPORTED)


def _client(profile: dict[str, object], busy: bool, suspended: bool) -> dict[str, object]:
    """A client as the queue shows it: its profile, and what it does now."""
    status = "suspended" if suspended else "busy" if busy else "online"
    return {**profile, "busy": busy, "online": True, "suspended": suspended, "Status": status}
