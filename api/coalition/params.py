"""Parameter types shared by the Coalition routes."""

from typing import Annotated

from litestar.di import NamedDependency
from litestar.params import PathParameter

from core.models import JobId
from core.service import Core

JobIdPath = Annotated[int, PathParameter(ge=1, le=2**63 - 1, description="a job id")]
JobIds = list[JobId]

# the core, injected into every handler by name
CoreDep = NamedDependency[Core]
