"""A small JSON Schema validator, for the keywords the Genvid face's settings use.

It knows `type`, `properties`, `required`, `additionalProperties`, `items`, `enum`,
`const`, `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`, `minLength`,
`maxLength`, `pattern`, `minItems` and `maxItems` (with their draft 6 and later meanings:
the exclusive bounds are numbers), `true` and `false` as schemas, and ignores the
annotations (`$schema`, `$id`, `$comment`, `title`, `description`, `default`,
`examples`, `format`, `readOnly`, `writeOnly`, `deprecated`). Any other keyword is
refused by `check_schema`, so a schema never means more than is checked.

`problem` answers the first mistake of a document as its JSON path and what was
expected there: `$.encode.output.width: expected integer >= 16`.
"""

import math
import re
from collections.abc import Mapping

import msgspec

TYPES = ("null", "boolean", "object", "array", "number", "integer", "string")
ANNOTATIONS = frozenset(
    {"$schema", "$id", "$comment", "title", "description", "default", "examples", "format",
     "readOnly", "writeOnly", "deprecated"}
)  # fmt: skip
_NUMBERS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
_COUNTS = ("minLength", "maxLength", "minItems", "maxItems")
KEYWORDS = frozenset(
    {"type", "properties", "required", "additionalProperties", "items", "enum", "const",
     "pattern", *_NUMBERS, *_COUNTS}
)  # fmt: skip
_BOUNDS = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SchemaError(ValueError):
    """A schema uses a keyword this validator does not know, or a known one wrongly."""


def check_schema(schema: object, where: str = "#") -> None:
    """Raise `SchemaError` naming the place (`#/properties/encode/type`) where `schema`
    is not made of the known keywords in their known shapes."""
    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        raise SchemaError(f"{where}: a schema is an object or a boolean")
    for keyword, value in schema.items():
        here = f"{where}/{keyword}"
        if keyword in ANNOTATIONS:
            continue
        if keyword not in KEYWORDS:
            raise SchemaError(f"{here}: unknown keyword (this server knows {_known()})")
        if keyword == "type":
            names = value if isinstance(value, list) else [value]
            if not names or any(n not in TYPES for n in names) or len(set(names)) < len(names):
                raise SchemaError(f"{here}: expected one of {', '.join(TYPES)}, or a list of them")
        elif keyword == "properties":
            if not isinstance(value, dict):
                raise SchemaError(f"{here}: expected an object of schemas")
            for name, sub in value.items():
                check_schema(sub, f"{here}/{name}")
        elif keyword == "required":
            if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
                raise SchemaError(f"{here}: expected an array of property names")
        elif keyword in ("additionalProperties", "items"):
            check_schema(value, here)
        elif keyword == "enum":
            if not isinstance(value, list) or not value:
                raise SchemaError(f"{here}: expected a non-empty array")
        elif keyword == "pattern":
            if not isinstance(value, str):
                raise SchemaError(f"{here}: expected a regular expression")
            try:
                re.compile(value)
            except re.error as exc:
                raise SchemaError(f"{here}: not a regular expression: {exc}") from None
        elif keyword in _NUMBERS:
            if not _is_number(value) or not math.isfinite(value):
                raise SchemaError(f"{here}: expected a number")
        elif keyword in _COUNTS and not (_is_integer(value) and value >= 0):
            raise SchemaError(f"{here}: expected a non-negative integer")


def problem(schema: object, document: object, path: str = "$") -> str | None:
    """The first place where `document` breaks `schema` (checked with `check_schema`),
    as `<JSON path>: expected ...`; None when it validates."""
    if schema is True or (isinstance(schema, dict) and not schema.keys() & KEYWORDS):
        return None
    if not isinstance(schema, dict):
        return f"{path}: not allowed here"
    types = schema.get("type")
    names: list[str] = types if isinstance(types, list) else [types] if types else []
    if names and not any(_is_type(document, n) for n in names):
        return f"{path}: expected {' or '.join(names)}, got {_type_of(document)}"
    if "const" in schema and not _equal(document, schema["const"]):
        return f"{path}: expected {_show(schema['const'])}"
    if "enum" in schema and not any(_equal(document, v) for v in schema["enum"]):
        return f"{path}: expected one of {', '.join(_show(v) for v in schema['enum'])}"
    if _is_number(document):
        what = "integer" if "integer" in names and "number" not in names else "number"
        for keyword, sign in _BOUNDS.items():
            bound = schema.get(keyword)
            if bound is not None and not _within(document, sign, bound):
                return f"{path}: expected {what} {sign} {_show(bound)}"
    elif isinstance(document, str):
        return _string_problem(schema, document, path)
    elif isinstance(document, list):
        return _array_problem(schema, document, path)
    elif isinstance(document, dict):
        return _object_problem(schema, document, path)
    return None


def _string_problem(schema: Mapping[str, object], text: str, path: str) -> str | None:
    # JSON Schema counts characters (code points), as Python's len does
    low, high = schema.get("minLength"), schema.get("maxLength")
    if isinstance(low, int) and len(text) < low:
        return f"{path}: expected a string of at least {low} character{_s(low)}"
    if isinstance(high, int) and len(text) > high:
        return f"{path}: expected a string of at most {high} character{_s(high)}"
    pattern = schema.get("pattern")
    if isinstance(pattern, str) and re.search(pattern, text) is None:
        return f"{path}: expected a string matching {_show(pattern)}"
    return None


def _array_problem(schema: Mapping[str, object], items: list[object], path: str) -> str | None:
    low, high = schema.get("minItems"), schema.get("maxItems")
    if isinstance(low, int) and len(items) < low:
        return f"{path}: expected an array of at least {low} item{_s(low)}"
    if isinstance(high, int) and len(items) > high:
        return f"{path}: expected an array of at most {high} item{_s(high)}"
    if "items" in schema:
        for index, item in enumerate(items):
            found = problem(schema["items"], item, f"{path}[{index}]")
            if found:
                return found
    return None


def _object_problem(
    schema: Mapping[str, object], members: dict[str, object], path: str
) -> str | None:
    required = schema.get("required")
    for name in required if isinstance(required, list) else []:
        if name not in members:
            return f"{_member(path, name)}: expected a value (the property is required)"
    properties = schema.get("properties")
    known: Mapping[str, object] = properties if isinstance(properties, dict) else {}
    extra = schema.get("additionalProperties", True)
    for name, value in members.items():
        here = _member(path, name)
        if name in known:
            found = problem(known[name], value, here)
        elif extra is False:
            found = f"{here}: unexpected property (the schema allows only {_names(known)})"
        else:
            found = problem(extra, value, here)
        if found:
            return found
    return None


def merge(base: object, over: object) -> object:
    """`over` deep-merged over `base`: objects key by key; arrays, scalars and null
    replace what they are merged over."""
    if not isinstance(base, dict) or not isinstance(over, dict):
        return over
    merged = dict(base)
    for name, value in over.items():
        merged[name] = merge(base[name], value) if name in base else value
    return merged


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_integer(value: object) -> bool:
    # JSON Schema: a number with no fractional part (1.0 is an integer)
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, int) and not isinstance(value, bool)


def _is_type(value: object, name: str) -> bool:
    match name:
        case "null":
            return value is None
        case "boolean":
            return isinstance(value, bool)
        case "object":
            return isinstance(value, dict)
        case "array":
            return isinstance(value, list)
        case "number":
            return _is_number(value)
        case "integer":
            return _is_integer(value)
        case _:
            return isinstance(value, str)


def _type_of(value: object) -> str:
    for name in ("null", "boolean", "object", "array", "integer", "number"):
        if _is_type(value, name):
            return name
    return "string"


def _within(value: object, sign: str, bound: object) -> bool:
    if not isinstance(value, int | float) or not isinstance(bound, int | float):
        return True
    match sign:
        case ">=":
            return value >= bound
        case "<=":
            return value <= bound
        case ">":
            return value > bound
        case _:
            return value < bound


def _equal(a: object, b: object) -> bool:
    """JSON equality: 1 and 1.0 are equal, true and 1 are not."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _member(path: str, name: str) -> str:
    return f"{path}.{name}" if _NAME.fullmatch(name) else f"{path}[{_show(name)}]"


def _show(value: object) -> str:
    return msgspec.json.encode(value).decode()


def _names(known: Mapping[str, object]) -> str:
    return ", ".join(sorted(known)) or "none"


def _known() -> str:
    return ", ".join(sorted(KEYWORDS))


def _s(count: int) -> str:
    return "" if count == 1 else "s"
