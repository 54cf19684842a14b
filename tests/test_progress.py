"""Unit tests of core/progress.py: progress figures read from a job's output with the
job's own `progress_pattern`."""

import pytest

from core.progress import compile_pattern, parse


def test_percent_placeholder_reads_a_percentage() -> None:
    assert parse("#%percent", "", "frame 3 #42 done") == pytest.approx(0.42)
    assert parse("Progress: %percent%", "", "Progress: 7%\n") == pytest.approx(0.07)


def test_one_placeholder_reads_a_fraction() -> None:
    assert parse("progress=%one", "", "progress=0.25\n") == pytest.approx(0.25)
    assert parse("%one done", "", "0.75 done") == pytest.approx(0.75)


def test_compile_pattern_gives_the_divisor_of_each_placeholder() -> None:
    percent = compile_pattern("#%percent")
    one = compile_pattern("at %one")
    assert percent is not None
    assert one is not None
    assert percent[1] == 100.0
    assert one[1] == 1.0
    assert percent[0].search("#12") is not None
    assert one[0].search("at 0.5") is not None


def test_last_match_wins() -> None:
    assert parse("#%percent", "", "#10 #20\n#30 and #5 at last") == pytest.approx(0.05)
    assert parse("p=%one", "", "p=0.9 p=0.1 p=0.6") == pytest.approx(0.6)


def test_a_figure_split_across_tail_and_chunk_is_found() -> None:
    # the number split
    assert parse("#%percent", "frame #4", "2 done") == pytest.approx(0.42)
    # the literal part split
    assert parse("Progress: %percent", "log... Prog", "ress: 77\n") == pytest.approx(0.77)
    # the placeholder ends the tail and the chunk only closes the match
    assert parse("[%one]", "[0.3", "5]") == pytest.approx(0.35)


def test_no_placeholder_gives_none() -> None:
    assert compile_pattern("progress") is None
    assert compile_pattern("") is None
    assert parse("progress", "", "progress 42") is None
    assert parse("", "", "#42") is None


def test_no_match_or_empty_chunk_gives_none() -> None:
    assert parse("#%percent", "", "nothing to see") is None
    assert parse("#%percent", "#42", "") is None
    assert parse("#%percent", "", "") is None


@pytest.mark.parametrize(
    ("pattern", "chunk", "expected"),
    [
        ("at %one", "at .5", 0.5),
        ("at %one", "at 0.", 0.0),
        ("#%percent", "#12.", 0.12),
        ("#%percent", "#.5", 0.005),
        ("#%percent", "#12.5", 0.125),
        ("#%percent", "#007", 0.07),
    ],
)
def test_numbers_with_a_leading_or_trailing_point(
    pattern: str, chunk: str, expected: float
) -> None:
    assert parse(pattern, "", chunk) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("pattern", "chunk", "expected"),
    [
        ("#%percent", "#150", 1.0),
        ("#%percent", "#100", 1.0),
        ("#%percent", "#0", 0.0),
        ("at %one", "at 2.5", 1.0),
        ("at %one", "at 0", 0.0),
    ],
)
def test_figures_are_clamped_to_zero_one(pattern: str, chunk: str, expected: float) -> None:
    figure = parse(pattern, "", chunk)
    assert figure == pytest.approx(expected)
    assert figure is not None
    assert 0.0 <= figure <= 1.0


def test_a_minus_sign_never_gives_a_negative_figure() -> None:
    figure = parse("at %one", "", "at -0.5")
    assert figure is None or 0.0 <= figure <= 1.0


@pytest.mark.parametrize(
    ("pattern", "matching", "not_matching"),
    [
        ("[%percent%]", "[45%]", "445%"),
        ("a.b %one", "a.b 0.5", "axb 0.5"),
        ("(%one)", "(0.5)", "0.5"),
        ("p* %one", "p* 0.5", "ppp 0.5"),
        ("x+y=%one", "x+y=0.5", "xxy=0.5"),
        ("$%one^", "$0.5^", "0.5"),
        ("a|b %one", "a|b 0.5", "b 0.5"),
        ("\\d %one", "\\d 0.5", "7 0.5"),
        ("{%one}?", "{0.5}?", "0.5}"),
    ],
)
def test_regex_special_characters_in_the_pattern_are_literal(
    pattern: str, matching: str, not_matching: str
) -> None:
    compiled = compile_pattern(pattern)
    assert compiled is not None
    expected = 0.45 if "%percent" in pattern else 0.5
    assert parse(pattern, "", matching) == pytest.approx(expected)
    assert parse(pattern, "", not_matching) is None


def test_a_match_entirely_in_the_tail_is_not_reported_again() -> None:
    assert parse("#%percent", "#50", " rendering, no figure yet") is None
    assert parse("#%percent", "#50 #60", "\n") is None
    # a later match in the chunk is reported, the tail's one is not
    assert parse("#%percent", "#90", " #20") == pytest.approx(0.2)


def test_a_match_ending_in_the_chunk_wins_over_one_in_the_tail() -> None:
    # the tail's "#80" is old news; the chunk completes "#3" -> "#35"
    assert parse("#%percent", "#80 #3", "5 ok") == pytest.approx(0.35)
