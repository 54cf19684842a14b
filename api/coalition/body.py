"""Request bodies of the Coalition face.

The Coalition document's own examples write edit bodies with bare integer keys and
trailing commas (`{123: {"title": "x",},}`). Bodies that fail strict JSON decoding get
one more chance with exactly those two liberties rewritten; anything else stays a 400.
"""

from typing import Any

from litestar.exceptions import SerializationException

from api.body import CorralRequest

_SPACE = b" \t\r\n"
_DIGITS = b"0123456789"


def relax(body: bytes) -> bytes:
    """Quote bare integer object keys and drop trailing commas, outside strings."""
    out = bytearray()
    i, n = 0, len(body)
    while i < n:
        c = body[i]
        if c == ord('"'):
            end = _string_end(body, i)
            out += body[i:end]
            i = end
            continue
        if c == ord(",") and _last_significant(out) not in (ord("["), ord("{"), ord(",")):
            j = _skip_space(body, i + 1)
            if j < n and body[j] in b"}]":
                i += 1
                continue
        if c in _DIGITS and _last_significant(out) in (ord("{"), ord(",")):
            j = i
            while j < n and body[j] in _DIGITS:
                j += 1
            k = _skip_space(body, j)
            if k < n and body[k] == ord(":"):
                out += b'"' + body[i:j] + b'"'
                i = j
                continue
        out.append(c)
        i += 1
    return bytes(out)


def _string_end(body: bytes, start: int) -> int:
    i = start + 1
    while i < len(body):
        if body[i] == ord("\\"):
            i += 2
            continue
        if body[i] == ord('"'):
            return i + 1
        i += 1
    return len(body)


def _skip_space(body: bytes, i: int) -> int:
    while i < len(body) and body[i] in _SPACE:
        i += 1
    return i


def _last_significant(out: bytearray) -> int | None:
    for c in reversed(out):
        if c not in _SPACE:
            return c
    return None


class CoalitionRequest(CorralRequest):
    def _decode(self, body: bytes) -> Any:
        try:
            return super()._decode(body)
        except SerializationException as strict_error:
            relaxed = relax(body)
            if relaxed == body:
                raise
            try:
                return super()._decode(relaxed)
            except SerializationException:
                raise strict_error from None
