"""The HTTP client of the terminal commands: one server, the caller's token, and the
server's refusals and silences turned into messages (worker.errors.CommandError).

It is the standard library's `http.client` on one kept-alive connection rather than
httpx: a command is a handful of requests, and importing httpx (with the command-line
modules it loads when click and rich are installed) took half of a command's start-up."""

import http.client
import os
from collections.abc import Mapping, Sequence
from typing import TypeVar
from urllib.parse import urlencode, urlsplit

import msgspec

from worker.errors import CommandError

DEFAULT_SERVER = "http://127.0.0.1:19211"
T = TypeVar("T")
Params = Mapping[str, str | int | Sequence[str] | Sequence[int] | None]

# what a kept-alive connection the server has closed since its last answer raises on the
# next request; that request never reached the server, so it is sent again once
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class Refused(CommandError):
    """The server answered with an error status."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"the server answered {status}: {detail}")
        self.http_status = status
        self.detail = detail


class _Answer(msgspec.Struct):
    path: str
    status: int
    reason: str
    content: bytes


class Client:
    """Requests to one server; a server that cannot be reached is a CommandError that
    names it (`no answer from URL: why`), never a traceback."""

    def __init__(self, server: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.server = server.rstrip("/")
        url = urlsplit(self.server)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise CommandError(f"not a server address: {server!r} (http://host:port)")
        try:
            port = url.port
        except ValueError:
            raise CommandError(f"not a server address: {server!r} (bad port)") from None
        kind = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        self._connection = kind(url.hostname, port, timeout=timeout)
        # a server behind a path prefix (a proxy's /corral)
        self._prefix = url.path
        secret = token if token is not None else os.environ.get("CORRAL_TOKEN", "")
        self._headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        self._answered = False

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._connection.close()

    def get(self, path: str, into: type[T], params: Params | None = None) -> T:
        return self._decode(self._request("GET", path, params=params), into)

    def send(self, method: str, path: str, body: object, into: type[T]) -> T:
        """A request with a JSON body; its answer decoded as `into`."""
        return self._decode(self._request(method, path, body=body), into)

    def _request(
        self, method: str, path: str, params: Params | None = None, body: object = None
    ) -> _Answer:
        query = urlencode({k: v for k, v in (params or {}).items() if v is not None}, doseq=True)
        target = self._prefix + path + (f"?{query}" if query else "")
        content = None if body is None else msgspec.json.encode(body)
        headers = dict(self._headers)
        if content is not None:
            headers["Content-Type"] = "application/json"
        try:
            try:
                answer = self._exchange(method, target, content, headers)
            except _STALE:
                if not self._answered:
                    raise
                self._connection.close()
                answer = self._exchange(method, target, content, headers)
        except (OSError, http.client.HTTPException) as exc:
            self._connection.close()
            why = str(exc) or type(exc).__name__
            raise CommandError(f"no answer from {self.server}: {why}") from None
        if answer.status >= 400:
            raise Refused(answer.status, _detail(answer))
        return answer

    def _exchange(
        self, method: str, target: str, content: bytes | None, headers: dict[str, str]
    ) -> _Answer:
        self._connection.request(method, target, body=content, headers=headers)
        response = self._connection.getresponse()
        content_read = response.read()
        answer = _Answer(target.partition("?")[0], response.status, response.reason, content_read)
        self._answered = True
        return answer

    def _decode(self, answer: _Answer, into: type[T]) -> T:
        try:
            return msgspec.json.decode(answer.content, type=into)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise CommandError(
                f"{self.server} answered {answer.path} with something else "
                f"than Corral's answer ({exc}); is it a Corral server?"
            ) from None


def _detail(answer: _Answer) -> str:
    try:
        body = msgspec.json.decode(answer.content, type=dict[str, object])
    except (msgspec.DecodeError, msgspec.ValidationError):
        return answer.content.decode(errors="replace").strip()[:500] or answer.reason
    detail = body.get("detail", body)
    return detail if isinstance(detail, str) else msgspec.json.encode(detail).decode()
