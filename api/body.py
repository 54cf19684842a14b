"""Request bodies: decoded once, checked against the handler's declared type with msgspec so
a mistake is reported with its path (`Expected int, got str - at $[...].priority`)."""

from typing import Any, ClassVar

import msgspec
from litestar import Request
from litestar.exceptions import SerializationException
from litestar.serialization import decode_json

from core.errors import Invalid

# msgspec decodes nesting with the C stack and stops at Python's recursion limit; no body
# of any route nests more than a few levels
TOO_DEEP = "the request body nests arrays or objects too deeply"


class CorralRequest(Request[Any, Any, Any]):
    # whether "1" may stand for 1 (and 1 for true): Coalition's tools send numbers as text
    strict: ClassVar[bool] = False

    async def json(self) -> Any:
        body = await self.body()
        if not body:
            raise Invalid("a JSON request body is required")
        try:
            value = self._decode(body)
        except UnicodeDecodeError:
            raise Invalid("the request body is not valid UTF-8") from None
        except SerializationException as exc:
            raise Invalid(f"the request body is not valid JSON: {exc.detail}") from None
        except RecursionError:
            raise Invalid(TOO_DEEP) from None
        declared = self.route_handler.parsed_fn_signature.parameters.get("data")
        if declared is not None:
            try:
                msgspec.convert(value, declared.annotation, strict=self.strict, str_keys=True)
            except msgspec.ValidationError as exc:
                raise Invalid(str(exc)) from None
            except RecursionError:
                raise Invalid(TOO_DEEP) from None
        return value

    def _decode(self, body: bytes) -> Any:
        return decode_json(body, type_decoders=self.route_handler.resolve_type_decoders())


class StrictRequest(CorralRequest):
    """Bodies whose values must have their declared JSON types (a count is a JSON integer)."""

    strict = True
