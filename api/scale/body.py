"""Request bodies of the Scale face: a JSON object, read as Scale's REST layer reads it.

The routes check each field themselves (api.scale.fields), in Scale's order and with its
messages, so the body is only decoded here: `JSON parse error - ...` when it is not JSON.
"""

from typing import Any

from litestar import Request
from litestar.exceptions import SerializationException
from litestar.serialization import decode_json

from api.body import TOO_DEEP
from core.errors import Invalid


class ScaleRequest(Request[Any, Any, Any]):
    async def json(self) -> Any:
        body = await self.body()
        try:
            value = decode_json(body) if body else {}
        except UnicodeDecodeError:
            raise Invalid("JSON parse error - the body is not valid UTF-8") from None
        except SerializationException as exc:
            raise Invalid(f"JSON parse error - {exc.detail}") from None
        except RecursionError:
            raise Invalid(f"JSON parse error - {TOO_DEEP}") from None
        if not isinstance(value, dict):
            raise Invalid("JSON parse error - the body must be a JSON object")
        return value
