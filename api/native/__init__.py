"""Corral's own API, under `/api/v2`."""

from litestar import Router

from api.body import CorralRequest
from api.native.dashboard import DashboardReads
from api.native.jobs import JobsController
from api.native.services import ServicesController
from api.native.waiting import WaitingReads
from api.native.workers import WorkerProtocol
from api.native.workers import hot_routes as native_hot_routes

__all__ = ["native_hot_routes", "native_router"]


def native_router() -> Router:
    return Router(
        path="/api/v2",
        route_handlers=[
            JobsController,
            ServicesController,
            WorkerProtocol,
            DashboardReads,
            WaitingReads,
        ],
        request_class=CorralRequest,
        tags=["native"],
    )
