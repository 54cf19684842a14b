"""Compile the legacy Coalition ``where_clause`` filter into a parameterised SQL fragment.

The old web page sends a SQL-looking string which the original server pasted straight
into its query. Here the string is parsed by a small hand-written tokenizer and a
recursive-descent parser, and only *trusted* text (the caller's column expressions,
fixed keywords and ``$n`` placeholders) ever reaches the SQL; every literal from the
input travels as a bound parameter.

Grammar (keywords and column names are case-insensitive)::

    expr       := or
    or         := and ("OR" and)*
    and        := not ("AND" not)*
    not        := "NOT" not | primary
    primary    := "(" expr ")" | comparison
    comparison := column op value                          op: = == != <> < <= > >=
                | column ["NOT"] ("LIKE" | "ILIKE") string  (text columns only)
                | column ["NOT"] "IN" "(" value ("," value)* ")"
                | column ["NOT"] "BETWEEN" value "AND" value
    column     := name | `name` | "name"                   must be a key of ``columns``
    value      := ["-"]digits ["." digits] | 'single quoted' | "double quoted"

Inside quotes a doubled quote character stands for itself. A double-quoted token is a
column name where a column is expected and a string where a value is expected, which is
how MySQL-flavoured legacy filters use it. ``IS [NOT] NULL`` and ``NULL`` are rejected:
every filterable column is NOT NULL, so the legacy page never needed them.

Values are checked against the column type: integer columns take integer literals
(or quoted integers, because the legacy page quotes everything) that fit in 64 bits;
float columns take any finite number or numeric string; text columns take strings,
and a bare number is taken as its source text.
"""

from __future__ import annotations

import math
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

import msgspec

__all__ = ["Column", "ColumnType", "FilterError", "compile_where"]

ColumnType = Literal["int", "float", "text"]
Param = int | float | str


class Column(msgspec.Struct, frozen=True):
    """A filterable column: ``sql`` is trusted and copied verbatim into the output."""

    sql: str
    type: ColumnType


class FilterError(ValueError):
    """The filter text is not acceptable; str(err) says what and where (character offset)."""


_MAX_TEXT_LENGTH: Final = 4000
_MAX_DEPTH: Final = 32
_MAX_PARAMS: Final = 200
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
# Longer digit strings cannot fit in 64 bits; checking first keeps int() away from
# CPython's huge-integer conversion limit and its cost.
_INT64_MAX_DIGITS: Final = 19
# Error messages echo pieces of the input; keep them short enough for a response body.
_SHOW_LIMIT: Final = 40

_DIGITS: Final = frozenset(string.digits)
_WORD_START: Final = frozenset(string.ascii_letters + "_")
_WORD_CHARS: Final = _WORD_START | _DIGITS
# Deliberately ASCII only: nothing outside the grammar should be silently ignored.
_SPACE: Final = frozenset(" \t\r\n\f\v")

_OPERATORS: Final[Mapping[str, str]] = {
    "=": "=",
    "==": "=",
    "!=": "<>",
    "<>": "<>",
    "<": "<",
    "<=": "<=",
    ">": ">",
    ">=": ">=",
}
_KEYWORDS: Final = frozenset(
    {"AND", "OR", "NOT", "LIKE", "ILIKE", "IN", "BETWEEN", "IS", "NULL", "TRUE", "FALSE"}
)
_TYPE_NAMES: Final[Mapping[ColumnType, str]] = {
    "int": "an integer",
    "float": "a number",
    "text": "text",
}

_TokenKind = Literal["word", "number", "string", "quoted", "backtick", "op", "punct", "end"]


@dataclass(frozen=True, slots=True)
class _Token:
    kind: _TokenKind
    text: str  # identifier, numeral, or string content with quote escapes resolved
    pos: int
    raw: str  # exactly as written, for error messages


def compile_where(
    text: str, columns: Mapping[str, Column], first_param: int = 1
) -> tuple[str, list[int | float | str]]:
    """Parse `text` and return (sql_fragment, params).

    Placeholders are numbered $first_param, $first_param+1, ... in the order the
    params are listed. An empty or all-whitespace text compiles to ("TRUE", []).
    Raises FilterError for anything outside the grammar.
    """
    if first_param < 1:
        # A caller bug, not bad user input, so it must not turn into a 400 response.
        raise ValueError(f"first_param must be >= 1, got {first_param}")
    if len(text) > _MAX_TEXT_LENGTH:
        raise FilterError(f"filter is too long: {len(text)} characters, limit {_MAX_TEXT_LENGTH}")
    tokens = _tokenize(text)
    if tokens[0].kind == "end":
        return "TRUE", []
    parser = _Parser(tokens, columns, first_param)
    return parser.parse(), parser.params


def _show(s: str) -> str:
    if len(s) > _SHOW_LIMIT:
        s = s[:_SHOW_LIMIT] + "…"
    return f"'{s}'"


def _describe(tok: _Token) -> str:
    if tok.kind == "end":
        return "end of input"
    if tok.kind in ("string", "quoted", "backtick"):
        # Already wrapped in its own quotes; adding ours would only confuse.
        return tok.raw if len(tok.raw) <= _SHOW_LIMIT else tok.raw[:_SHOW_LIMIT] + "…"
    return _show(tok.raw)


def _all_digits(s: str) -> bool:
    # str.isdigit() also accepts things like '²' and Arabic-Indic digits.
    return bool(s) and all(c in _DIGITS for c in s)


def _is_integer(s: str) -> bool:
    return _all_digits(s[1:] if s.startswith("-") else s)


def _is_numeral(s: str) -> bool:
    # float() is far more lenient ('inf', '1_0', ' 1e3 '), so the syntax is checked here.
    whole, dot, frac = (s[1:] if s.startswith("-") else s).partition(".")
    return _all_digits(whole) and (not dot or _all_digits(frac))


def _tokenize(text: str) -> list[_Token]:
    for pos, ch in enumerate(text):
        # PostgreSQL text cannot hold NUL and UTF-8 cannot encode lone surrogates; both
        # would otherwise surface as a database error (a 500) instead of a 400.
        if ch == "\x00" or "\ud800" <= ch <= "\udfff":
            raise FilterError(f"invalid character U+{ord(ch):04X} at {pos}")

    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        start = i
        if c in _SPACE:
            i += 1
            continue
        if c in _WORD_START:
            while i < n and text[i] in _WORD_CHARS:
                i += 1
            tokens.append(_Token("word", text[start:i], start, text[start:i]))
        elif c in _DIGITS or (c == "-" and i + 1 < n and text[i + 1] in _DIGITS):
            # Swallow trailing letters and dots too, so '12abc' or '1.2.3' is reported
            # as one malformed number rather than a confusing "unexpected 'abc'".
            i += 1
            while i < n and (text[i] in _WORD_CHARS or text[i] == "."):
                i += 1
            raw = text[start:i]
            if not _is_numeral(raw):
                raise FilterError(f"malformed number {_show(raw)} at {start}")
            tokens.append(_Token("number", raw, start, raw))
        elif c in "'\"`":
            content, i = _scan_quoted(text, start)
            kind: _TokenKind = "string" if c == "'" else "quoted" if c == '"' else "backtick"
            tokens.append(_Token(kind, content, start, text[start:i]))
        elif c in "(),":
            i += 1
            tokens.append(_Token("punct", c, start, c))
        elif c in "=<>" or text.startswith("!=", i):
            i += 2 if text[i : i + 2] in _OPERATORS else 1
            tokens.append(_Token("op", text[start:i], start, text[start:i]))
        elif text.startswith("--", i) or text.startswith("/*", i):
            raise FilterError(f"comments are not allowed at {start}")
        else:
            raise FilterError(f"unexpected {_show(c)} at {start}")
    tokens.append(_Token("end", "", n, ""))
    return tokens


def _scan_quoted(text: str, start: int) -> tuple[str, int]:
    """Return the unescaped content of the quoted token at `start` and the index after it."""
    quote = text[start]
    parts: list[str] = []
    i = start + 1
    while True:
        j = text.find(quote, i)
        if j < 0:
            what = "quoted name" if quote == "`" else "string"
            raise FilterError(f"unterminated {what} starting at {start}")
        if text.startswith(quote, j + 1):
            parts.append(text[i : j + 1])
            i = j + 2
            continue
        parts.append(text[i:j])
        return "".join(parts), j + 1


class _Parser:
    """Recursive descent over the token list, emitting SQL as it goes.

    Emitting directly (rather than building a tree first) keeps params in the same
    left-to-right order as their placeholders, which is all asyncpg needs.
    """

    def __init__(self, tokens: list[_Token], columns: Mapping[str, Column], first: int) -> None:
        self._tokens = tokens
        self._i = 0
        self._columns = columns
        self._first = first
        self._depth = 0
        self.params: list[Param] = []

    def parse(self) -> str:
        sql = self._or()
        tok = self._peek()
        if tok.kind != "end":
            raise FilterError(f"unexpected {_describe(tok)} at {tok.pos}")
        return sql

    # -- token helpers -------------------------------------------------------------

    def _peek(self) -> _Token:
        return self._tokens[self._i]

    def _next(self) -> _Token:
        tok = self._tokens[self._i]
        if tok.kind != "end":
            self._i += 1
        return tok

    @staticmethod
    def _keyword(tok: _Token) -> str | None:
        if tok.kind == "word" and tok.text.upper() in _KEYWORDS:
            return tok.text.upper()
        return None

    def _accept_keyword(self, keyword: str) -> _Token | None:
        tok = self._peek()
        if self._keyword(tok) == keyword:
            return self._next()
        return None

    def _enter(self, tok: _Token) -> None:
        # Bounding depth keeps hostile input like 'NOT NOT NOT ...' or '((((...' from
        # exhausting the Python stack and escaping as RecursionError.
        self._depth += 1
        if self._depth > _MAX_DEPTH:
            raise FilterError(f"expression nested too deeply (limit {_MAX_DEPTH}) at {tok.pos}")

    def _bind(self, value: Param, tok: _Token) -> str:
        if len(self.params) >= _MAX_PARAMS:
            raise FilterError(f"too many values (limit {_MAX_PARAMS}) at {tok.pos}")
        self.params.append(value)
        return f"${self._first + len(self.params) - 1}"

    # -- boolean structure ---------------------------------------------------------

    def _or(self) -> str:
        parts = [self._and()]
        while self._accept_keyword("OR"):
            parts.append(self._and())
        # Flat n-ary groups: long OR chains do not deepen the output or the recursion.
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def _and(self) -> str:
        parts = [self._not()]
        while self._accept_keyword("AND"):
            parts.append(self._not())
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def _not(self) -> str:
        tok = self._accept_keyword("NOT")
        if tok is None:
            return self._primary()
        self._enter(tok)
        inner = self._not()
        self._depth -= 1
        return f"(NOT {inner})"

    def _primary(self) -> str:
        tok = self._peek()
        if tok.kind != "punct" or tok.text != "(":
            return self._comparison()
        self._next()
        self._enter(tok)
        inner = self._or()
        close = self._next()
        if close.kind != "punct" or close.text != ")":
            raise FilterError(
                f"expected ')' to close '(' at {tok.pos}, found {_describe(close)} at {close.pos}"
            )
        self._depth -= 1
        # Every sub-expression is already parenthesised, so the group adds nothing.
        return inner

    # -- comparisons ---------------------------------------------------------------

    def _comparison(self) -> str:
        name, column = self._column(self._next())
        tok = self._next()
        if tok.kind == "op":
            value = self._value(name, column, tok.text)
            return f"({column.sql} {_OPERATORS[tok.text]} {value})"

        keyword = self._keyword(tok)
        if keyword == "IS":
            raise FilterError(f"NULL is not supported (IS [NOT] NULL) at {tok.pos}")
        negated = keyword == "NOT"
        if negated:
            tok = self._next()
            keyword = self._keyword(tok)
        not_ = "NOT " if negated else ""

        if keyword in ("LIKE", "ILIKE"):
            return f"({column.sql} {not_}{keyword} {self._pattern(name, column, tok)})"
        if keyword == "IN":
            return f"({column.sql} {not_}IN ({', '.join(self._in_list(name, column))}))"
        if keyword == "BETWEEN":
            low = self._value(name, column, "BETWEEN")
            and_tok = self._next()
            if self._keyword(and_tok) != "AND":
                raise FilterError(
                    f"expected AND between the BETWEEN bounds at {and_tok.pos}, "
                    f"found {_describe(and_tok)}"
                )
            high = self._value(name, column, "AND")
            return f"({column.sql} {not_}BETWEEN {low} AND {high})"

        if negated:
            raise FilterError(
                f"expected LIKE, ILIKE, IN or BETWEEN after NOT at {tok.pos}, "
                f"found {_describe(tok)}"
            )
        raise FilterError(
            f"expected an operator after column {_show(name)} at {tok.pos}, "
            f"found {_describe(tok)}; use one of = == != <> < <= > >= LIKE ILIKE IN BETWEEN"
        )

    def _column(self, tok: _Token) -> tuple[str, Column]:
        is_name = tok.kind in ("quoted", "backtick") or (
            tok.kind == "word" and self._keyword(tok) is None
        )
        if not is_name:
            raise FilterError(f"expected a column name at {tok.pos}, found {_describe(tok)}")
        name = tok.text.lower()
        column = self._columns.get(name)
        if column is None:
            allowed = ", ".join(sorted(self._columns))
            raise FilterError(f"unknown column {_show(tok.text)} at {tok.pos}; allowed: {allowed}")
        return name, column

    def _in_list(self, name: str, column: Column) -> list[str]:
        open_tok = self._next()
        if open_tok.kind != "punct" or open_tok.text != "(":
            raise FilterError(
                f"expected '(' after IN at {open_tok.pos}, found {_describe(open_tok)}"
            )
        if self._peek().text == ")" and self._peek().kind == "punct":
            raise FilterError(f"IN list must not be empty at {open_tok.pos}")
        items = [self._value(name, column, "(")]
        while True:
            tok = self._next()
            if tok.kind == "punct" and tok.text == ",":
                items.append(self._value(name, column, ","))
            elif tok.kind == "punct" and tok.text == ")":
                return items
            else:
                raise FilterError(
                    f"expected ',' or ')' in IN list at {tok.pos}, found {_describe(tok)}"
                )

    def _pattern(self, name: str, column: Column, keyword_tok: _Token) -> str:
        keyword = keyword_tok.text.upper()
        if column.type != "text":
            raise FilterError(
                f"{keyword} needs a text column, but {_show(name)} is "
                f"{_TYPE_NAMES[column.type]} (at {keyword_tok.pos})"
            )
        tok = self._next()
        self._reject_null(tok)
        if tok.kind not in ("string", "quoted"):
            raise FilterError(
                f"expected a string after '{keyword}' at {tok.pos}, found {_describe(tok)}"
            )
        # PostgreSQL treats backslash as the LIKE escape and fails at run time on a
        # pattern ending in an unpaired one; catch it here as a client error.
        trailing = len(tok.text) - len(tok.text.rstrip("\\"))
        if trailing % 2:
            raise FilterError(f"{keyword} pattern must not end with a lone backslash at {tok.pos}")
        return self._bind(tok.text, tok)

    def _value(self, name: str, column: Column, after: str) -> str:
        tok = self._next()
        self._reject_null(tok)
        if tok.kind not in ("number", "string", "quoted"):
            raise FilterError(
                f"expected a value after '{after}' at {tok.pos}, found {_describe(tok)}"
            )
        return self._bind(_convert(name, column, tok), tok)

    def _reject_null(self, tok: _Token) -> None:
        if self._keyword(tok) == "NULL":
            raise FilterError(f"NULL is not supported at {tok.pos}")


def _convert(name: str, column: Column, tok: _Token) -> Param:
    text = tok.text
    if column.type == "text":
        # A bare number keeps its spelling ('007' stays '007'), as the legacy SQL did.
        return text
    if column.type == "int":
        if not _is_integer(text):
            raise FilterError(f"column {_show(name)} is an integer, got {_show(text)} at {tok.pos}")
        if len(text.lstrip("-")) <= _INT64_MAX_DIGITS:
            value = int(text)
            if _INT64_MIN <= value <= _INT64_MAX:
                return value
        raise FilterError(
            f"column {_show(name)} is a 64-bit integer, {_show(text)} is out of range at {tok.pos}"
        )
    if not _is_numeral(text):
        raise FilterError(f"column {_show(name)} is a number, got {_show(text)} at {tok.pos}")
    number = float(text)  # huge numerals become inf here instead of raising
    if not math.isfinite(number):
        raise FilterError(f"column {_show(name)}: {_show(text)} is out of range at {tok.pos}")
    return number
