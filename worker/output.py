"""What the terminal commands print: tables, states in colour, times, and the y/N question.

On a terminal, tables go through `rich` (imported here only when one is drawn, so that
start-up stays fast), fit the terminal's width (long titles cut short) and colour states
unless NO_COLOR is set; anywhere else they are plain aligned text with no escape codes, for
scripts and logs."""

import os
import shutil
import sys
import time
from typing import TextIO

from worker.errors import CommandError

# a state's colour (rich style names); states not named here stay plain
STATE_STYLES = {
    "FINISHED": "green",
    "ERROR": "bold red",
    "WORKING": "cyan",
    "PAUSED": "yellow",
    "PENDING": "dim",
    "TIMEOUT": "red",
    "CANCELED": "yellow",
}


def terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def colours(stream: TextIO) -> bool:
    """Escape codes may go to `stream`: a terminal, and neither NO_COLOR nor TERM=dumb."""
    return terminal(stream) and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def width(stream: TextIO) -> int:
    return shutil.get_terminal_size((100, 24)).columns if terminal(stream) else 1 << 30


def table(rows: list[list[str]], out: TextIO, *, fit: str | None = None) -> None:
    """`rows[0]` is the header. On a terminal the column named `fit` is cut short (with
    an ellipsis) so that each row holds on one line, and a STATE column is coloured."""
    if not terminal(out):
        plain_table(rows, out)
        return
    from rich.console import Console
    from rich.table import Column, Table
    from rich.text import Text

    header, body = rows[0], rows[1:]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    total = width(out)
    columns = []
    for i, name in enumerate(header):
        limit = None
        if name == fit:
            others = sum(w for j, w in enumerate(widths) if j != i) + 2 * (len(header) - 1)
            limit = max(total - others, 8)
        columns.append(Column(name, no_wrap=True, overflow="ellipsis", max_width=limit))
    grid = Table(*columns, box=None, pad_edge=False, show_edge=False, header_style="bold")
    state = header.index("STATE") if "STATE" in header else -1
    for row in body:
        cells = [
            Text(cell, style=STATE_STYLES.get(cell, "")) if i == state else Text(cell)
            for i, cell in enumerate(row)
        ]
        grid.add_row(*cells)
    console = Console(file=out, width=total, no_color=not colours(out), highlight=False)
    console.print(grid)


def plain_table(rows: list[list[str]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write(
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n"
        )


def styled(text: str, style: str, out: TextIO) -> str:
    """`text` in `style` (a STATE_STYLES value) as escape codes when `out` takes them."""
    if not style or not colours(out):
        return text
    from rich.console import Console

    console = Console(file=out, force_terminal=True, highlight=False)
    with console.capture() as captured:
        console.print(text, style=style, end="", markup=False)
    return captured.get()


def state(name: str, out: TextIO) -> str:
    return styled(name, STATE_STYLES.get(name, ""), out)


def when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch)) if epoch > 0 else ""


def duration(seconds: float) -> str:
    whole = max(round(seconds), 0)
    if whole < 60:
        return f"{whole}s"
    minutes, whole = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{whole:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def confirm(question: str, yes: bool) -> None:
    """Ask `question` (y/N) on the terminal unless `yes`; a CommandError when not
    answered yes, and when no one can answer (stdin is not a terminal)."""
    if yes:
        return
    if not terminal(sys.stdin):
        raise CommandError(f"{question} Not asked: stdin is not a terminal; add --yes.")
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        raise CommandError("nothing done")
