"""Progress from a job's output, with the job's own `progress_pattern`.

A pattern is literal text with one placeholder: `%percent` stands for a number read as a
percentage (`#%percent` finds 42 in "#42" and gives 0.42), `%one` for a number already in
0..1. The last match in the output wins. Output arrives in chunks, so the caller passes the
tail of what came before: a figure split across two chunks is still found.
"""

import re
from functools import lru_cache

_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
# how much earlier output is kept to complete a match split across chunks
TAIL_BYTES = 256


@lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> tuple[re.Pattern[str], float] | None:
    """The regular expression of a progress pattern and the divisor of its number, or
    None for a pattern without a placeholder."""
    for placeholder, scale in (("%percent", 100.0), ("%one", 1.0)):
        if placeholder in pattern:
            before, _, after = pattern.partition(placeholder)
            return re.compile(re.escape(before) + _NUMBER + re.escape(after)), scale
    return None


def parse(pattern: str, tail: str, chunk: str) -> float | None:
    """The progress (0..1) told by the last match in `tail + chunk` that ends inside
    `chunk`, or None if the chunk tells nothing new."""
    compiled = compile_pattern(pattern)
    if compiled is None or not chunk:
        return None
    regex, scale = compiled
    text = tail + chunk
    last: float | None = None
    for match in regex.finditer(text):
        if match.end() > len(tail):
            last = float(match.group(1)) / scale
    if last is None:
        return None
    return min(max(last, 0.0), 1.0)
