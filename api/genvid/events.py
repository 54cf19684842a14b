"""`/v1/events`: the Genvid events definitions (map-reduce files, stored as the
`genvid.events` document) and the results feed of this server process
(docs/genvid.md#events)."""

import re
from typing import Annotated, Final

import msgspec
from litestar import Controller, get, post
from litestar.params import JSONBody, PathParameter

from api.access import access
from api.params import CoreDep
from core.documents import Result
from core.errors import Invalid, NotFound

DOCUMENT: Final = "genvid.events"
_DIGITS = re.compile(r"[0-9]+")
# more digits than this is past any end the feed can reach
_LONGEST = 18


class EventsFile(msgspec.Struct, kw_only=True):
    """One events file: its key and its content, a JSON object as a string."""

    key: str
    value: str


class EventsBody(msgspec.Struct, kw_only=True):
    """What `POST /v1/events` takes; a sent `errors` (and anything else) is ignored."""

    mapreduce: list[EventsFile]


class EventsDocument(msgspec.Struct, kw_only=True):
    """The stored set: its files, and the problems found in them, one per line."""

    errors: str = ""
    mapreduce: list[EventsFile] = msgspec.field(default_factory=list)


class Results(msgspec.Struct, kw_only=True):
    """A read of the results feed: its end, and the messages after the counter sent."""

    counter: int
    messages: list[Result]


def checked(body: EventsBody) -> EventsDocument:
    """The document to store for `body`; `Invalid`, naming the key, for a file that is
    not a JSON object (or a key given twice). Files lacking their `maps` or `reductions`
    array are kept, with the problem in `errors`."""
    seen: set[str] = set()
    problems: list[str] = []
    for number, file in enumerate(body.mapreduce):
        if not file.key:
            raise Invalid(f"$.mapreduce[{number}].key: an events file needs a non-empty key")
        if file.key in seen:
            raise Invalid(f"$.mapreduce[{number}].key: the key {_quoted(file.key)} is given twice")
        seen.add(file.key)
        try:
            content = msgspec.json.decode(file.value)
        except msgspec.DecodeError as exc:
            raise Invalid(
                f"events file {_quoted(file.key)}: the value is not JSON: {exc}"
            ) from None
        except RecursionError:
            raise Invalid(f"events file {_quoted(file.key)}: the value nests too deeply") from None
        if not isinstance(content, dict):
            raise Invalid(f"events file {_quoted(file.key)}: the value is not a JSON object")
        for part in ("maps", "reductions"):
            if not isinstance(content.get(part), list):
                what = "is not an array" if part in content else "is missing"
                problems.append(f"{file.key}: {part} {what}")
    return EventsDocument(errors="\n".join(problems), mapreduce=body.mapreduce)


def _quoted(key: str) -> str:
    return msgspec.json.encode(key).decode()


class EventsController(Controller):
    path = "/events"
    tags = ["genvid"]  # noqa: RUF012 (Litestar reads it from the class)

    @get("/", summary="The events definitions, and the problems found in them")
    async def events(self, core: CoreDep) -> EventsDocument:
        stored = await core.documents.get(DOCUMENT, EventsDocument)
        return EventsDocument() if stored is None else stored

    @post(
        "/",
        status_code=200,
        summary="Replace the whole set of events definitions",
        opt=access("submit"),
    )
    async def change(self, core: CoreDep, data: JSONBody[EventsBody]) -> EventsDocument:
        document = checked(data)
        await core.documents.put(DOCUMENT, document)
        return document

    @get(
        "/results/{counter:str}",
        summary="The results after position `counter`, and the end of the feed",
    )
    async def results(
        self,
        core: CoreDep,
        counter: Annotated[str, PathParameter(description="a position, digits only")],
    ) -> Results:
        if not _DIGITS.fullmatch(counter):
            raise NotFound("no such route: the counter of /v1/events/results/ is digits only")
        position = int(counter) if len(counter) <= _LONGEST else 2**63
        end, messages = core.event_results.read(position)
        return Results(counter=end, messages=messages)


EVENTS_ROUTES: Final = [EventsController]
