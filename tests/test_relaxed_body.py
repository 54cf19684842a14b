"""The two liberties the Coalition document's examples take with JSON, and nothing more."""

import json

import pytest

from api.coalition.body import relax


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{123: {"title": "x",}, 124: {"a": 1}}', {"123": {"title": "x"}, "124": {"a": 1}}),
        ("[1, 2, 3,]", [1, 2, 3]),
        ('{"a": [1,\n ],\n}', {"a": [1]}),
        ("{ 7 : 1 }", {"7": 1}),
        ('{"k": "12: not a key,}"}', {"k": "12: not a key,}"}),
        ('{"k": "a \\" 5: b,]"}', {"k": 'a " 5: b,]'}),
    ],
)
def test_relaxed_forms_become_json(text: str, expected: object) -> None:
    assert json.loads(relax(text.encode())) == expected


@pytest.mark.parametrize("text", ["[1 2]", "{a: 1}", "{1.5: 2}", "[,]", "{", "[1,,]"])
def test_other_mistakes_stay_invalid(text: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        json.loads(relax(text.encode()))


def test_valid_json_is_untouched() -> None:
    text = b'{"1": [1, 2], "s": "x,]"}'
    assert relax(text) == text
