"""The HTTP client of the terminal commands: one server, the caller's token, and the
server's refusals and silences turned into messages (worker.errors.CommandError)."""

import os
from collections.abc import Mapping, Sequence
from typing import TypeVar

import httpx
import msgspec

from worker.errors import CommandError

DEFAULT_SERVER = "http://127.0.0.1:19211"
T = TypeVar("T")
Params = Mapping[str, str | int | Sequence[str] | Sequence[int]]


class Refused(CommandError):
    """The server answered with an error status."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"the server answered {status}: {detail}")
        self.http_status = status
        self.detail = detail


class Client:
    """Requests to one server; a server that cannot be reached is a CommandError that
    names it (`no answer from URL: why`), never a traceback."""

    def __init__(self, server: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.server = server.rstrip("/")
        secret = token if token is not None else os.environ.get("CORRAL_TOKEN", "")
        self._http = httpx.Client(
            base_url=self.server,
            timeout=timeout,
            headers={"Authorization": f"Bearer {secret}"} if secret else None,
        )

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, into: type[T], params: Params | None = None) -> T:
        return self._decode(self._request("GET", path, params=params), into)

    def send(self, method: str, path: str, body: object, into: type[T]) -> T:
        """A request with a JSON body; its answer decoded as `into`."""
        return self._decode(self._request(method, path, body=body), into)

    def _request(
        self, method: str, path: str, params: Params | None = None, body: object = None
    ) -> httpx.Response:
        content = None if body is None else msgspec.json.encode(body)
        headers = None if content is None else {"Content-Type": "application/json"}
        try:
            response = self._http.request(
                method, path, params=params, content=content, headers=headers
            )
        except httpx.TransportError as exc:
            why = str(exc) or type(exc).__name__
            raise CommandError(f"no answer from {self.server}: {why}") from None
        if response.status_code >= 400:
            raise Refused(response.status_code, _detail(response))
        return response

    def _decode(self, response: httpx.Response, into: type[T]) -> T:
        try:
            return msgspec.json.decode(response.content, type=into)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise CommandError(
                f"{self.server} answered {response.request.url.path} with something else "
                f"than Corral's answer ({exc}); is it a Corral server?"
            ) from None


def _detail(response: httpx.Response) -> str:
    try:
        body = msgspec.json.decode(response.content, type=dict[str, object])
    except (msgspec.DecodeError, msgspec.ValidationError):
        return response.text.strip()[:500] or response.reason_phrase
    detail = body.get("detail", body)
    return detail if isinstance(detail, str) else msgspec.json.encode(detail).decode()
