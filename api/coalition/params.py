"""Parameter types of the Coalition routes."""

from typing import Annotated

from litestar.params import PathParameter

from core.models import JobId

JobIdPath = Annotated[int, PathParameter(ge=1, le=2**63 - 1, description="a job id")]
JobIds = list[JobId]
