"""`/xmlrpc/addjob`: the legacy submission route of Coalition's command-line tools.

Form fields (or query arguments) in, the new id out as plain text; `-1` when the job
cannot be created, with the reason in the `X-Corral-Error` header, since the legacy tools
read the body as a number.
"""

import msgspec
from litestar import MediaType, Request, Response, route
from litestar.datastructures import FormMultiDict, State
from litestar.exceptions import HTTPException
from litestar.openapi.datastructures import ResponseSpec

from api.access import IdentityDep, access, own_jobs, submitted_as
from api.coalition.wire import dependency_ids
from api.params import CoreDep
from core.errors import CorralError
from core.models import JobSpec

_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
# legacy field name -> JobSpec field
_FIELDS = {
    "parent": "parent",
    "title": "title",
    "cmd": "command",
    "command": "command",
    "dir": "dir",
    "env": "environment",
    "priority": "priority",
    "timeout": "timeout",
    "retry": "retry",
    "affinity": "affinity",
    "localprogress": "progress_pattern",
    "url": "url",
    "user": "user",
    "state": "state",
}


@route(
    "/addjob",
    http_method=["GET", "POST"],
    status_code=200,
    summary="Create a job from form fields; answers the id as text, -1 on failure",
    opt=access("submit"),
    media_type=MediaType.TEXT,
    # the legacy tools read a number: -1, the reason in X-Corral-Error
    responses={
        status: ResponseSpec(
            data_container=str, media_type=MediaType.TEXT, description=text, generate_examples=False
        )
        for status, text in (
            (400, "-1: the job cannot be created"),
            (403, "-1: the token or the command policy forbids it"),
        )
    },
)
async def add_job(
    request: Request[object, object, State], core: CoreDep, identity: IdentityDep
) -> Response[str]:
    fields: dict[str, object] = {}
    form = FormMultiDict()
    if request.method == "POST":
        try:
            if request.content_type[0] not in _FORMS and await request.body():
                # anything else would be read as no fields at all: a job of defaults
                return _failed(400, "the body must be form fields (x-www-form-urlencoded)")
            form = await request.form()
        except HTTPException as exc:
            # the body is too large: said as the legacy tools understand it
            return _failed(exc.status_code, exc.detail)
    for source in (request.query_params, form):
        for key, value in source.items():
            if key in _FIELDS and isinstance(value, str):
                fields[_FIELDS[key]] = value
    deps = request.query_params.get("dependencies") or form.get("dependencies") or ""
    try:
        if isinstance(deps, str):
            fields["dependencies"] = dependency_ids(deps)
        spec = msgspec.convert(fields, JobSpec, strict=False)
        spec = msgspec.structs.replace(spec, user=submitted_as(identity, spec.user))
        await own_jobs(core, identity, [spec.parent])
        job_id = await core.jobs.submit(spec)
    except (ValueError, msgspec.ValidationError, CorralError) as exc:
        reason = exc.message if isinstance(exc, CorralError) else str(exc)
        return _failed(exc.status if isinstance(exc, CorralError) else 400, reason)
    return Response(str(job_id), media_type="text/plain")


def _failed(status: int, reason: str) -> Response[str]:
    # a header carries printable ASCII only
    header = "".join(c if " " <= c <= "~" else "?" for c in reason)
    return Response(
        "-1", status_code=status, media_type="text/plain", headers={"X-Corral-Error": header}
    )
