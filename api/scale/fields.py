"""Reading request fields the way Scale's REST layer does (`rest_util.parse_*`), with its
messages: `Missing required parameter: "docker_image"`, `Parameter must be a valid
boolean: "is_active"`. Scale clients and scripts show these texts to people."""

from collections.abc import Mapping, Sequence
from typing import Final

from core.errors import Invalid

_TRUE: Final = ("true", "t", "1")
_FALSE: Final = ("false", "f", "0")


def _missing(name: str) -> Invalid:
    return Invalid(f'Missing required parameter: "{name}"')


def _wrong(kind: str, name: str) -> Invalid:
    return Invalid(f'Parameter must be a valid {kind}: "{name}"')


def boolean(value: object, name: str) -> bool:
    """A JSON boolean, or `true, t, 1, false, f, 0` in any case."""
    if isinstance(value, bool):
        return value
    text = value.strip().lower() if isinstance(value, str) else None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _wrong("boolean", name)


def integer(value: object, name: str) -> int:
    """A JSON integer, or its text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip()
        digits = text.removeprefix("-")
        # ASCII digits only ('²' is a digit to str.isdigit), and few enough for int()
        if digits.isascii() and digits.isdigit() and len(digits) <= 18:
            return int(text)
    raise _wrong("integer", name)


def string(body: Mapping[str, object], name: str, *, required: bool = False) -> str | None:
    if name not in body:
        if required:
            raise _missing(name)
        return None
    value = body[name]
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise _wrong("string", name)
    return value


def obj(body: Mapping[str, object], name: str, *, required: bool = False) -> object:
    """A JSON object field, as it came (None when absent and not required)."""
    if name not in body:
        if required:
            raise _missing(name)
        return None
    value = body[name]
    if not isinstance(value, dict):
        raise _wrong("JSON object", name)
    return value


def known(body: Mapping[str, object], fields: Sequence[str]) -> None:
    """Refuse a key the route does not take, as Scale words it."""
    for key in body:
        if key not in fields:
            listed = ", ".join(fields)
            raise Invalid(f"{key} is not a valid field. Valid fields are: {listed}")


def query_boolean(values: Sequence[str], name: str) -> bool | None:
    return boolean(values[-1], name) if values else None


def query_integers(values: Sequence[str], name: str) -> list[int]:
    return [integer(v, name) for v in values]
