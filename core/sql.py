"""Named SQL queries, kept in `core/queries/*.sql`.

A file holds blocks introduced by `-- name: <query_name>`; each block runs as one
statement with `$n` bound parameters. Python code asks for a query by name, so the SQL of
each concern stays in one file.
"""

import re
from importlib import resources
from typing import Final

_NAME = re.compile(r"^-- name: ([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


class Queries:
    """The named queries of one `.sql` file."""

    def __init__(self, filename: str) -> None:
        text = resources.files("core.queries").joinpath(filename).read_text("utf-8")
        parts = _NAME.split(text)
        self._queries: Final[dict[str, str]] = {}
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            if name in self._queries:
                raise ValueError(f"{filename}: query {name!r} is defined twice")
            self._queries[name] = body.strip().rstrip(";")

    def __getitem__(self, name: str) -> str:
        return self._queries[name]

    def names(self) -> list[str]:
        return sorted(self._queries)
