"""Tests for core.filters: the legacy where_clause -> parameterised SQL compiler."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.filters import Column, FilterError, compile_where

COLUMNS = {
    "id": Column("j.id", "int"),
    "priority": Column("j.priority", "int"),
    "state": Column("j.state", "text"),
    "user": Column("j.user_name", "text"),
    "progress": Column("j.progress", "float"),
}
ALLOWED = "allowed: id, priority, progress, state, user"
OPS = "use one of = == != <> < <= > >= LIKE ILIKE IN BETWEEN"


def compile_(text: str, first_param: int = 1) -> tuple[str, list[int | float | str]]:
    return compile_where(text, COLUMNS, first_param)


def error_of(text: str) -> str:
    with pytest.raises(FilterError) as info:
        compile_(text)
    return str(info.value)


# --- basics -------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", " ", "  \t\r\n  "])
def test_empty_filter_is_true(text: str) -> None:
    assert compile_(text) == ("TRUE", [])


def test_legacy_examples() -> None:
    assert compile_("state='ERROR' AND user LIKE 'bo%'") == (
        "((j.state = $1) AND (j.user_name LIKE $2))",
        ["ERROR", "bo%"],
    )
    assert compile_("id IN (1,2)") == ("(j.id IN ($1, $2))", [1, 2])
    assert compile_("NOT (priority >= 1000 OR state != 'x')") == (
        "(NOT ((j.priority >= $1) OR (j.state <> $2)))",
        [1000, "x"],
    )


@pytest.mark.parametrize(
    ("op", "sql_op"),
    [
        ("=", "="),
        ("==", "="),
        ("!=", "<>"),
        ("<>", "<>"),
        ("<", "<"),
        ("<=", "<="),
        (">", ">"),
        (">=", ">="),
    ],
)
def test_comparison_operators(op: str, sql_op: str) -> None:
    assert compile_(f"priority {op} 5") == (f"(j.priority {sql_op} $1)", [5])
    assert compile_(f"priority{op}5") == (f"(j.priority {sql_op} $1)", [5])


def test_filter_error_is_a_value_error() -> None:
    assert issubclass(FilterError, ValueError)


# --- precedence and grouping --------------------------------------------------------


def test_and_binds_tighter_than_or() -> None:
    assert compile_("id=1 OR id=2 AND id=3") == (
        "((j.id = $1) OR ((j.id = $2) AND (j.id = $3)))",
        [1, 2, 3],
    )
    assert compile_("id=1 AND id=2 OR id=3") == (
        "(((j.id = $1) AND (j.id = $2)) OR (j.id = $3))",
        [1, 2, 3],
    )


def test_not_binds_tighter_than_and_and_or() -> None:
    assert compile_("NOT id=1 AND id=2") == ("((NOT (j.id = $1)) AND (j.id = $2))", [1, 2])
    assert compile_("NOT id=1 OR id=2") == ("((NOT (j.id = $1)) OR (j.id = $2))", [1, 2])
    assert compile_("id=1 AND NOT id=2") == ("((j.id = $1) AND (NOT (j.id = $2)))", [1, 2])


def test_double_not() -> None:
    assert compile_("NOT NOT id=1") == ("(NOT (NOT (j.id = $1)))", [1])


def test_parentheses_override_precedence() -> None:
    assert compile_("(id=1 OR id=2) AND id=3") == (
        "(((j.id = $1) OR (j.id = $2)) AND (j.id = $3))",
        [1, 2, 3],
    )
    assert compile_("NOT (id=1 AND id=2)") == ("(NOT ((j.id = $1) AND (j.id = $2)))", [1, 2])


def test_redundant_parentheses_are_dropped() -> None:
    assert compile_("((((id = 1))))") == ("(j.id = $1)", [1])


def test_chains_are_flat() -> None:
    assert compile_("id=1 AND id=2 AND id=3") == (
        "((j.id = $1) AND (j.id = $2) AND (j.id = $3))",
        [1, 2, 3],
    )
    assert compile_("id=1 OR id=2 OR id=3") == (
        "((j.id = $1) OR (j.id = $2) OR (j.id = $3))",
        [1, 2, 3],
    )


# --- IN / LIKE / BETWEEN ------------------------------------------------------------


def test_in_and_not_in() -> None:
    assert compile_("state IN ('A', 'B', \"C\")") == (
        "(j.state IN ($1, $2, $3))",
        ["A", "B", "C"],
    )
    assert compile_("id NOT IN (7)") == ("(j.id NOT IN ($1))", [7])
    assert compile_("id in ('1', 2, -3)") == ("(j.id IN ($1, $2, $3))", [1, 2, -3])


@pytest.mark.parametrize("keyword", ["LIKE", "ILIKE"])
def test_like_and_not_like(keyword: str) -> None:
    assert compile_(f"user {keyword} 'bo%'") == (f"(j.user_name {keyword} $1)", ["bo%"])
    assert compile_(f'user NOT {keyword} "%_x"') == (
        f"(j.user_name NOT {keyword} $1)",
        ["%_x"],
    )


def test_like_pattern_may_escape_with_backslash() -> None:
    assert compile_(r"user LIKE '100\%'") == ("(j.user_name LIKE $1)", ["100\\%"])
    assert compile_(r"user LIKE 'a\\'") == ("(j.user_name LIKE $1)", ["a\\\\"])


def test_between_and_not_between() -> None:
    assert compile_("priority BETWEEN 1 AND 10") == ("(j.priority BETWEEN $1 AND $2)", [1, 10])
    assert compile_("progress NOT BETWEEN 0.25 AND '0.75'") == (
        "(j.progress NOT BETWEEN $1 AND $2)",
        [0.25, 0.75],
    )


def test_between_inside_and_chain() -> None:
    assert compile_("id BETWEEN 1 AND 5 AND state = 'x'") == (
        "((j.id BETWEEN $1 AND $2) AND (j.state = $3))",
        [1, 5, "x"],
    )


# --- literals, quoting, case ----------------------------------------------------------


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("'it''s'", "it's"),
        ('"say ""hi"""', 'say "hi"'),
        ("''", ""),
        ('""', ""),
        ("'a\"b'", 'a"b'),
        ('"a\'b"', "a'b"),
        ("'back\\slash'", "back\\slash"),
        ("'héllo wörld ✓'", "héllo wörld ✓"),
        ("'  padded  '", "  padded  "),
        ("'AND OR NOT'", "AND OR NOT"),
        ("'x''); DROP TABLE jobs; --'", "x'); DROP TABLE jobs; --"),
    ],
)
def test_string_literals(literal: str, value: str) -> None:
    assert compile_(f"state = {literal}") == ("(j.state = $1)", [value])


def test_numbers_for_text_columns_keep_their_spelling() -> None:
    assert compile_("state = 42") == ("(j.state = $1)", ["42"])
    assert compile_("state = 007") == ("(j.state = $1)", ["007"])
    assert compile_("state = -1.50") == ("(j.state = $1)", ["-1.50"])


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("12", 12),
        ("'12'", 12),
        ('"12"', 12),
        ("-12", -12),
        ("'-12'", -12),
        ("007", 7),
        ("0", 0),
        ("9223372036854775807", 2**63 - 1),
        ("-9223372036854775808", -(2**63)),
    ],
)
def test_int_values(literal: str, value: int) -> None:
    sql, params = compile_(f"id = {literal}")
    assert sql == "(j.id = $1)"
    assert params == [value]
    assert type(params[0]) is int


@pytest.mark.parametrize(
    ("literal", "value"),
    [("1", 1.0), ("0.5", 0.5), ("-0.5", -0.5), ("'0.75'", 0.75), ("'3'", 3.0), ("10.0", 10.0)],
)
def test_float_values(literal: str, value: float) -> None:
    sql, params = compile_(f"progress > {literal}")
    assert sql == "(j.progress > $1)"
    assert params == [value]
    assert type(params[0]) is float


def test_keywords_and_columns_are_case_insensitive() -> None:
    assert compile_("STATE = 'x' and Id In (1) Or PRIORITY nOt BeTwEeN 1 aNd 2") == (
        "(((j.state = $1) AND (j.id IN ($2))) OR (j.priority NOT BETWEEN $3 AND $4))",
        ["x", 1, 1, 2],
    )
    assert compile_("uSeR not ilike 'a%'") == ("(j.user_name NOT ILIKE $1)", ["a%"])


@pytest.mark.parametrize("name", ["`state`", "`STATE`", '"state"', '"State"'])
def test_quoted_column_names(name: str) -> None:
    assert compile_(f"{name} = 'x'") == ("(j.state = $1)", ["x"])


def test_double_quotes_are_a_column_then_a_value() -> None:
    assert compile_('"state" = "state"') == ("(j.state = $1)", ["state"])


def test_trusted_column_sql_is_copied_verbatim() -> None:
    columns = {"parent": Column("coalesce(j.parent_id, 0)", "int")}
    assert compile_where("parent = 3", columns) == ("(coalesce(j.parent_id, 0) = $1)", [3])


def test_whitespace_variants() -> None:
    assert compile_("\n\tid\r\n=\f1\v") == ("(j.id = $1)", [1])
    assert compile_("id IN(1,2)AND(state='x')") == (
        "((j.id IN ($1, $2)) AND (j.state = $3))",
        [1, 2, "x"],
    )


# --- placeholder numbering -------------------------------------------------------------


def test_first_param_offsets_placeholders() -> None:
    assert compile_("state = 'x' AND id IN (1, 2) OR priority BETWEEN 3 AND 4", 3) == (
        "(((j.state = $3) AND (j.id IN ($4, $5))) OR (j.priority BETWEEN $6 AND $7))",
        ["x", 1, 2, 3, 4],
    )


def test_first_param_must_be_positive() -> None:
    with pytest.raises(ValueError, match="first_param") as info:
        compile_("id = 1", 0)
    assert not isinstance(info.value, FilterError)


# --- limits --------------------------------------------------------------------------


def test_text_length_limit() -> None:
    ok = "state = '" + "x" * (4000 - 11) + "'"
    assert len(ok) == 3999
    assert compile_(ok)[1] == ["x" * 3989]
    too_long = " " * 4001
    assert error_of(too_long) == "filter is too long: 4001 characters, limit 4000"


def test_nesting_limit_for_parentheses() -> None:
    assert compile_("(" * 32 + "id=1" + ")" * 32) == ("(j.id = $1)", [1])
    message = error_of("(" * 33 + "id=1" + ")" * 33)
    assert message == "expression nested too deeply (limit 32) at 32"


def test_nesting_limit_for_not() -> None:
    assert compile_("NOT " * 32 + "id=1")[1] == [1]
    message = error_of("NOT " * 900 + "id=1")
    assert message == "expression nested too deeply (limit 32) at 128"


def test_nesting_limit_counts_parentheses_and_not_together() -> None:
    assert "nested too deeply" in error_of("NOT (" * 17 + "id=1" + ")" * 17)


def test_param_limit() -> None:
    values = ", ".join(str(i) for i in range(200))
    sql, params = compile_(f"id IN ({values})")
    assert params == list(range(200))
    assert sql.endswith("$200))")
    message = error_of(f"id IN ({values}, 200)")
    assert message.startswith("too many values (limit 200) at ")


def test_param_limit_across_comparisons() -> None:
    assert "too many values (limit 200)" in error_of(" OR ".join(["id=1"] * 201))


# --- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # columns
        ("foo = 1", f"unknown column 'foo' at 0; {ALLOWED}"),
        ("id = 1 AND `bar baz` = 2", f"unknown column 'bar baz' at 11; {ALLOWED}"),
        ('"nope" = 1', f"unknown column 'nope' at 0; {ALLOWED}"),
        ("1 = 1", "expected a column name at 0, found '1'"),
        ("'state' = 'x'", "expected a column name at 0, found 'state'"),
        ("AND id = 1", "expected a column name at 0, found 'AND'"),
        ("id = 1 AND", "expected a column name at 10, found end of input"),
        ("()", "expected a column name at 1, found ')'"),
        # operators and values
        ("state = ", "expected a value after '=' at 8, found end of input"),
        ("state = state", "expected a value after '=' at 8, found 'state'"),
        ("id = TRUE", "expected a value after '=' at 5, found 'TRUE'"),
        ("id = (1)", "expected a value after '=' at 5, found '('"),
        ("id = `1`", "expected a value after '=' at 5, found `1`"),
        ("id", f"expected an operator after column 'id' at 2, found end of input; {OPS}"),
        ("id 1", f"expected an operator after column 'id' at 3, found '1'; {OPS}"),
        ("id => 1", "expected a value after '=' at 4, found '>'"),
        ("id === 1", "expected a value after '==' at 5, found '='"),
        ("id NOT = 1", "expected LIKE, ILIKE, IN or BETWEEN after NOT at 7, found '='"),
        ("id = 1 2", "unexpected '2' at 7"),
        ("id = 1 'x'", "unexpected 'x' at 7"),
        ("id = 1)", "unexpected ')' at 6"),
        ("(id = 1", "expected ')' to close '(' at 0, found end of input at 7"),
        ("(id = 1 id = 2)", "expected ')' to close '(' at 0, found 'id' at 8"),
        # NULL
        ("state IS NULL", "NULL is not supported (IS [NOT] NULL) at 6"),
        ("state is not null", "NULL is not supported (IS [NOT] NULL) at 6"),
        ("state = NULL", "NULL is not supported at 8"),
        ("id IN (1, null)", "NULL is not supported at 10"),
        ("user LIKE NULL", "NULL is not supported at 10"),
        # type rules
        ("priority='abc'", "column 'priority' is an integer, got 'abc' at 9"),
        ("priority = 1.5", "column 'priority' is an integer, got '1.5' at 11"),
        ("priority = ' 1'", "column 'priority' is an integer, got ' 1' at 11"),
        ("priority = '1_000'", "column 'priority' is an integer, got '1_000' at 11"),
        ("priority = '²'", "column 'priority' is an integer, got '²' at 11"),
        ("id IN (1, 'x')", "column 'id' is an integer, got 'x' at 10"),
        ("id BETWEEN 1 AND 'z'", "column 'id' is an integer, got 'z' at 17"),
        (
            "id = 9223372036854775808",
            "column 'id' is a 64-bit integer, '9223372036854775808' is out of range at 5",
        ),
        (
            "id = '-9223372036854775809'",
            "column 'id' is a 64-bit integer, '-9223372036854775809' is out of range at 5",
        ),
        ("progress = 'fast'", "column 'progress' is a number, got 'fast' at 11"),
        ("progress = 'inf'", "column 'progress' is a number, got 'inf' at 11"),
        ("progress = 'nan'", "column 'progress' is a number, got 'nan' at 11"),
        ("progress = '1e3'", "column 'progress' is a number, got '1e3' at 11"),
        ("progress = '.5'", "column 'progress' is a number, got '.5' at 11"),
        # LIKE
        ("priority LIKE '1%'", "LIKE needs a text column, but 'priority' is an integer (at 9)"),
        ("progress ilike '1%'", "ILIKE needs a text column, but 'progress' is a number (at 9)"),
        ("user LIKE 5", "expected a string after 'LIKE' at 10, found '5'"),
        ("user LIKE", "expected a string after 'LIKE' at 9, found end of input"),
        ("user LIKE 'a\\'", "LIKE pattern must not end with a lone backslash at 10"),
        # IN
        ("id IN ()", "IN list must not be empty at 6"),
        ("id IN 1", "expected '(' after IN at 6, found '1'"),
        ("id IN (1 2)", "expected ',' or ')' in IN list at 9, found '2'"),
        ("id IN (1,)", "expected a value after ',' at 9, found ')'"),
        ("id IN (1", "expected ',' or ')' in IN list at 8, found end of input"),
        ("id NOT IN (", "expected a value after '(' at 11, found end of input"),
        # BETWEEN
        ("id BETWEEN 1", "expected AND between the BETWEEN bounds at 12, found end of input"),
        ("id BETWEEN 1 OR 2", "expected AND between the BETWEEN bounds at 13, found 'OR'"),
        ("id BETWEEN AND 2", "expected a value after 'BETWEEN' at 11, found 'AND'"),
        ("id BETWEEN 1 AND", "expected a value after 'AND' at 16, found end of input"),
        # tokens
        ("state='abc", "unterminated string starting at 6"),
        ('state = "abc', "unterminated string starting at 8"),
        ("state = 'it''s", "unterminated string starting at 8"),
        ("`state = 1", "unterminated quoted name starting at 0"),
        ("state = 'x' ; DROP", "unexpected ';' at 12"),
        ("id = 12abc", "malformed number '12abc' at 5"),
        ("id = 1.", "malformed number '1.' at 5"),
        ("id = 1.2.3", "malformed number '1.2.3' at 5"),
        ("id = .5", "unexpected '.' at 5"),
        ("id = - 1", "unexpected '-' at 5"),
        ("id = +1", "unexpected '+' at 5"),
        ("id ! 1", "unexpected '!' at 3"),
        ("j.id = 1", "unexpected '.' at 1"),
        ("id = 1 && id = 2", "unexpected '&' at 7"),
        ("id = 1 || id = 2", "unexpected '|' at 7"),
        ("id = ?", "unexpected '?' at 5"),
        ("id = $1", "unexpected '$' at 5"),
        ("id = 1 # comment", "unexpected '#' at 7"),
        ("état = 1", "unexpected 'é' at 0"),
        ("id\u00a0= 1", "unexpected '\u00a0' at 2"),
        ("id = 1 -- comment", "comments are not allowed at 7"),
        ("id = 1 /* c */", "comments are not allowed at 7"),
        ("state = 'a\x00b'", "invalid character U+0000 at 10"),
    ],
)
def test_error_messages(text: str, message: str) -> None:
    assert error_of(text) == message


def test_long_input_is_truncated_in_messages() -> None:
    message = error_of("x" * 500 + " = 1")
    assert message.startswith("unknown column '" + "x" * 40 + "…' at 0; allowed:")
    assert len(message) < 200


def test_messages_never_contain_sql() -> None:
    message = error_of("priority = 'abc'")
    assert "j.priority" not in message
    assert "$" not in message


# --- injection attempts --------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "state='x'; DROP TABLE jobs",
        "state='x';DROP TABLE jobs",
        "1=1",
        "1 = 1 OR 1 = 1",
        "state = state",
        "state = user",
        "id = id",
        "state='x' -- and the rest",
        "state='x' --",
        "state='x' /* comment */",
        "/* */ state='x'",
        "state='x' OR '1'='1'",
        "state='' OR ''=''",
        "id = 1 UNION SELECT password FROM users",
        "id = (SELECT 1)",
        "id IN (SELECT id FROM jobs)",
        "id = 1; SELECT pg_sleep(10)",
        "state = 'x' OR TRUE",
        "TRUE",
        "id = 1 OR 1",
        "pg_sleep(10) = 1",
        "state = 'x'::text",
        "state = E'\\x41'",
        "state = $$x$$",
        "id = 0x10",
        "id = 1e3",
        "state = 'a' || 'b'",
        "state = x'41'",
        "state = CHR(65)",
        "id = -id",
        "\\",
        "state='x' AND 1=1",
        "state='x'\nAND id=1; DELETE FROM jobs",
        "`state` = 1; --",
        "user LIKE 'a' ESCAPE '!'",
    ],
)
def test_injection_attempts_are_rejected(text: str) -> None:
    with pytest.raises(FilterError):
        compile_(text)


@pytest.mark.parametrize(
    "payload",
    [
        "'; DROP TABLE jobs; --",
        "x' OR '1'='1",
        "$1",
        ") OR (1=1",
        "*/ OR 1=1 /*",
    ],
)
def test_hostile_string_values_only_become_params(payload: str) -> None:
    quoted = "'" + payload.replace("'", "''") + "'"
    assert compile_(f"state = {quoted}") == ("(j.state = $1)", [payload])
    assert compile_(f"user LIKE {quoted}") == ("(j.user_name LIKE $1)", [payload])


# --- properties ------------------------------------------------------------------------

_SQL_WORDS = sorted(
    [c.sql for c in COLUMNS.values()]
    + ["TRUE", "AND", "OR", "NOT", "LIKE", "ILIKE", "IN", "BETWEEN"]
    + ["<>", "<=", ">=", "=", "<", ">", "(", ")", ","],
    key=len,
    reverse=True,
)
_SQL_TOKEN = "|".join([r"\$[0-9]+", *(re.escape(w) for w in _SQL_WORDS)])
SAFE_SQL = re.compile(rf"(?:{_SQL_TOKEN})(?: ?(?:{_SQL_TOKEN}))*")
PLACEHOLDER = re.compile(r"\$([0-9]+)")


def check_compiled(text: str, first_param: int) -> None:
    try:
        sql, params = compile_where(text, COLUMNS, first_param)
    except FilterError:
        return
    assert SAFE_SQL.fullmatch(sql), sql
    numbers = [int(n) for n in PLACEHOLDER.findall(sql)]
    assert len(numbers) == len(params)
    assert numbers == list(range(first_param, first_param + len(params)))
    assert sql.count("(") == sql.count(")")
    for param in params:
        assert isinstance(param, int | float | str)


@settings(max_examples=500)
@given(st.text(), st.integers(min_value=1, max_value=1000))
def test_random_text_compiles_or_raises_filter_error(text: str, first_param: int) -> None:
    check_compiled(text, first_param)


# Random text almost never parses; token soup reaches the success paths much more often.
_FRAGMENTS = [
    *COLUMNS,
    "`state`",
    '"id"',
    "foo",
    *("=", "==", "!=", "<>", "<", "<=", ">", ">="),
    *("AND", "OR", "NOT", "LIKE", "ILIKE", "IN", "BETWEEN", "IS", "NULL"),
    *("(", ")", ",", ";", "--", "/*"),
    *("1", "-2", "3.5", "99999999999999999999", "'x'", "'4'", "'it''s'", '"y"', "'%a\\'"),
]


@settings(max_examples=1000)
@given(
    st.lists(st.sampled_from(_FRAGMENTS), max_size=25),
    st.sampled_from([" ", ""]),
    st.integers(min_value=1, max_value=50),
)
def test_token_soup_compiles_or_raises_filter_error(
    fragments: list[str], separator: str, first_param: int
) -> None:
    check_compiled(separator.join(fragments), first_param)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(sorted(COLUMNS)),
            st.sampled_from(["=", "!=", "<", ">="]),
            st.integers(min_value=-1000, max_value=1000),
        ),
        min_size=1,
        max_size=20,
    ),
    st.sampled_from(["AND", "OR"]),
)
def test_generated_valid_filters_compile(terms: list[tuple[str, str, int]], joiner: str) -> None:
    text = f" {joiner} ".join(f"{name} {op} {value}" for name, op, value in terms)
    _, params = compile_(text)
    assert len(params) == len(terms)
    for (name, _, value), param in zip(terms, params, strict=True):
        expected = {"int": value, "float": float(value), "text": str(value)}[COLUMNS[name].type]
        assert param == expected
        assert type(param) is type(expected)
    check_compiled(text, 1)
