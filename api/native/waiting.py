"""Why a job is not running, through the native API."""

from litestar import Controller, get

from api.coalition.params import JobIdPath
from api.params import CoreDep
from core.waiting import Waiting


class WaitingReads(Controller):
    path = "/jobs"

    @get(
        "/{job_id:int}/wait",
        summary="Why a job is not running: its state, its place in the queue, and why",
        description=(
            "`position` is how many ready jobs dispatch would start before this one on the "
            "worker that would reach it first, counted up to 10,000 (the reason then says "
            '"more than 10,000 ahead"); null when the job is not in the ready queue '
            "(pending, paused, held before a retry, running or ended). `reason` is a short "
            'sentence ("all 4 workers busy", "no worker has affinity GPU", "waiting for '
            'jobs 3, 4", "paused"), empty when the job runs or has ended.'
        ),
    )
    async def wait(self, core: CoreDep, job_id: JobIdPath) -> Waiting:
        return await core.waits.why(job_id)
