"""The node store at `/awe/node`: Shock's node protocol as AWE's Go worker speaks it
(docs/awe.md, "The node store"; the client is `lib/shock/shock.go` of AWE 0.9.68).

Uploads are `multipart/form-data`, sent by the Go worker with `Transfer-Encoding:
chunked` and no Content-Length. The body is parsed here as it arrives, by the push parser
of `multipart` (the one Litestar itself depends on), and a file part's bytes go straight
to the store: nothing holds a whole upload. Answers are Shock's envelope
`{"status","data","error"}`; refusals come out in it through the face's error shape.

Access: `data` (api/access.py), any API token or client group token, reads open with
`[auth] public_reads`. AWE's worker sends the job's data token as `Authorization: OAuth
<token>`, which Corral takes as an API token: a job whose data token is its user's Corral
token has its files moved. What AWE asks for beyond that (docs/awe.md §2), a check of the
node's own job's data token, does not exist yet.
"""

import datetime
import hashlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Annotated, Any, Final

import msgspec
from litestar import Controller, Request, Response, get, post, put
from litestar.datastructures import State
from litestar.params import PathParameter
from litestar.response import Stream
from multipart import MultipartError, MultipartSegment, PushMultipartParser, parse_options_header

from api.access import access
from api.awe.envelope import HEADERS, Envelope
from api.params import CoreDep, natural
from core.errors import Invalid
from core.nodes import UNSET, Node, Nodes, TooLarge

# a parameter or attributes file is read whole: these bound them and their count
_MAX_FIELD: Final = 1024 * 1024
_MAX_SEGMENTS: Final = 32
# after a refusal the rest of the body is read and dropped, so that the client, still
# sending, gets to read the answer; past this many bytes the connection is let go instead
_MAX_DRAIN: Final = 256 * 1024 * 1024
NodeId = Annotated[str, PathParameter(description="a node id (a UUID)", max_length=64)]
# Go's zero time: what Shock shows for a time never set
_ZERO_TIME: Final = "0001-01-01T00:00:00Z"


class ShockFileOut(msgspec.Struct, kw_only=True):
    name: str
    size: int
    checksum: dict[str, str]
    format: str = ""
    virtual: bool = False
    virtual_parts: list[str] | None = None
    created_on: str


class PartsOut(msgspec.Struct, kw_only=True):
    count: int
    # the parts in so far
    length: int
    varlen: bool = True
    # [["<n>", "<md5>"], ...] for the parts in, in order
    parts: list[list[str]]
    compression: str = ""


class NodeOut(msgspec.Struct, kw_only=True):
    """A node with the keys and types the Go client's ShockNode decodes."""

    id: str
    version: str
    file: ShockFileOut
    attributes: Any
    indexes: dict[str, object] = msgspec.field(default_factory=dict)
    version_parts: dict[str, str] = msgspec.field(default_factory=dict)
    tags: list[str] | None = None
    linkage: list[object] | None = None
    priority: int = 0
    created_on: str
    last_modified: str
    expiration: str = _ZERO_TIME
    type: str
    parts: PartsOut | None


def _time(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def node_out(node: Node) -> NodeOut:
    file = node.file
    # Shock's version changes with the content; the md5 of what a client may cache on
    version = msgspec.json.encode([node.id, file.md5 if file else "", _time(node.last_modified)])
    parts = None
    if node.parts_count is not None:
        parts = PartsOut(
            count=node.parts_count,
            length=len(node.parts),
            parts=[[str(p.part), p.md5] for p in node.parts],
        )
    return NodeOut(
        id=node.id,
        version=_md5(version),
        file=ShockFileOut(
            name=file.name if file else "",
            size=file.size if file else 0,
            checksum={"md5": file.md5} if file else {},
            created_on=_time(file.created) if file else _ZERO_TIME,
        ),
        attributes=node.attributes,
        created_on=_time(node.created_on),
        last_modified=_time(node.last_modified),
        type=node.type,
        parts=parts,
    )


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _answer(node: Node) -> Response[Envelope]:
    return Response(
        Envelope(status=200, data=node_out(node), error=None), status_code=200, headers=HEADERS
    )


class _Body:
    """A multipart body read as it arrives: `segments()` yields each part's headers with
    an iterator over its bytes, which must be read (or left) before the next part."""

    def __init__(self, request: Request[Any, Any, State]) -> None:
        content_type, options = parse_options_header(request.headers.get("content-type", ""))
        if content_type != "multipart/form-data" or not options.get("boundary"):
            raise Invalid("the request Content-Type isn't multipart/form-data")
        self._raw = request.stream().__aiter__()
        self._parser = PushMultipartParser(
            options["boundary"], max_segment_count=_MAX_SEGMENTS, strict=True
        )
        self._events: AsyncGenerator[object, None] = self._parse()

    async def _parse(self) -> AsyncGenerator[object, None]:
        # a broken body is the client's mistake wherever it shows, in a part's bytes too
        try:
            with self._parser as parser:
                while not parser.closed:
                    chunk = await anext(self._raw, b"")
                    for event in parser.parse(chunk):
                        yield event
        except MultipartError as exc:
            raise Invalid(f"malformed multipart body: {exc}") from None

    async def segments(self) -> AsyncIterator[tuple[MultipartSegment, AsyncIterator[bytes]]]:
        async for event in self._events:
            if isinstance(event, MultipartSegment):
                body = self._body()
                yield event, body
                async for _ in body:  # what the handler did not read
                    pass

    async def _body(self) -> AsyncIterator[bytes]:
        async for event in self._events:
            if event is None:
                return
            assert isinstance(event, bytes | bytearray | memoryview)
            yield bytes(event)

    async def drain(self) -> None:
        """Read and drop what the client still sends (up to _MAX_DRAIN bytes)."""
        await self._events.aclose()
        dropped = 0
        async for chunk in self._raw:
            dropped += len(chunk)
            if dropped > _MAX_DRAIN:
                return


async def _field(body: AsyncIterator[bytes], name: str) -> bytes:
    data = bytearray()
    async for chunk in body:
        data += chunk
        if len(data) > _MAX_FIELD:
            raise Invalid(f"form field {name!r} is over {_MAX_FIELD} bytes")
    return bytes(data)


def _json(data: bytes, name: str) -> object:
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError:
        raise Invalid(f"{name} must be JSON") from None


async def _apply(
    nodes: Nodes, node: Node, request: Request[Any, Any, State], *, form_needed: bool
) -> Node:
    """Apply an upload's fields to `node` in the order they come. A file part's
    bytes go to the store as they arrive, with the attributes sent before it; the
    parameters are kept and applied at the end, together."""
    if not form_needed and "multipart/" not in request.headers.get("content-type", ""):
        # POST /node with no form at all: just the node
        return node
    body = _Body(request)
    attributes: object = UNSET
    parts: int | None = None
    file_name = ""
    try:
        async for segment, data in body.segments():
            name = segment.name or ""
            if segment.filename is None:
                value = (await _field(data, name)).decode("utf-8", "replace")
                if name == "attributes_str":
                    attributes = _json(value.encode(), "attributes_str")
                elif name == "parts":
                    parts = _count(value)
                elif name == "file_name":
                    file_name = value
                # other Shock parameters (copy_data, path, ...) are not served
            elif name == "attributes":
                attributes = _json(await _field(data, name), "the attributes file")
            elif name == "upload":
                node = await nodes.put_file(node.id, segment.filename, data, attributes)
                attributes = UNSET
            elif (part := natural(name, 9)) is not None:
                node = await nodes.put_part(node.id, part, data, attributes)
                attributes = UNSET
            else:
                raise Invalid(f"unknown file field {name!r}")
    except (TooLarge, Invalid):
        await body.drain()
        raise
    if parts is not None:
        node = await nodes.set_parts(node.id, parts, file_name)
    if attributes is not UNSET:
        node = await nodes.set_attributes(node.id, attributes)
    return node


def _count(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise Invalid(f"parts must be an integer, not {value!r}") from None


class NodesController(Controller):
    path = "/node"

    @post("/", opt=access("data"), request_max_body_size=None, status_code=200)
    async def create(self, core: CoreDep, request: Request[Any, Any, State]) -> Response[Envelope]:
        """A new node, with the fields of the form applied (Shock's POST /node)."""
        kind = request.headers.get("content-type", "")
        if kind and not kind.startswith("multipart/form-data"):
            # refused before anything is made: a bad request changes nothing
            raise Invalid(f"a node's fields come as multipart/form-data, not {kind}")
        nodes = Nodes(core.db, core.config)
        return _answer(await _apply(nodes, await nodes.create(), request, form_needed=False))

    @put("/{node_id:str}", opt=access("data"), request_max_body_size=None)
    async def update(
        self, core: CoreDep, node_id: NodeId, request: Request[Any, Any, State]
    ) -> Response[Envelope]:
        """The file (`upload`), a part (`<n>`), `parts=N`, attributes."""
        nodes = Nodes(core.db, core.config)
        return _answer(await _apply(nodes, await nodes.get(node_id), request, form_needed=True))

    @get("/{node_id:str}", opt=access("data"))
    async def read(
        self, core: CoreDep, node_id: NodeId, request: Request[Any, Any, State]
    ) -> Response[Envelope] | Stream:
        """The node; with `?download`, its bytes."""
        nodes = Nodes(core.db, core.config)
        if "download" not in request.query_params:
            return _answer(await nodes.get(node_id))
        node = await nodes.get(node_id)
        if node.file is None:
            raise Invalid("Node has no file")
        chunks = nodes.stream(node_id)
        # the first chunk is read here, so that a file gone since is still an enveloped
        # error and not a broken download
        first = await anext(chunks, b"")
        return Stream(
            _chained(first, chunks),
            media_type="application/octet-stream",
            headers={
                # no Content-Length: the bytes come from the stream's own snapshot, which
                # may hold a newer file than `node` says
                **HEADERS,
                "Content-Disposition": f'attachment; filename="{_quoted(node.file.name)}"',
            },
        )


async def _chained(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for chunk in rest:
        yield chunk


def _quoted(name: str) -> str:
    return "".join(c for c in name if c.isprintable() and c not in '"\\')
