"""The figures of docs/benchmarks.md as PNG pictures beside it (matplotlib, the `bench`
optional dependencies)."""

from pathlib import Path

import matplotlib

# no display on a build machine; chosen before pyplot loads a backend of its own
matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axis import Axis
from matplotlib.figure import Figure
from matplotlib.ticker import ScalarFormatter


def _save(figure: Figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _plain_log_axis(axis: Axis) -> None:
    # 1, 10, 100 rather than 10^0, 10^1, 10^2
    formatter = ScalarFormatter()
    formatter.set_scientific(False)
    axis.set_major_formatter(formatter)


def throughput(
    rates: list[tuple[int, float]],
    limit: float,
    path: Path,
    replicas: list[tuple[int, int, float]] | None = None,
) -> Path:
    """W1 jobs/s against workers, the pgbench limit and the targets as lines."""
    figure, ax = plt.subplots(figsize=(8.5, 4.2))
    workers = [w for w, _ in rates]
    ax.plot(workers, [r for _, r in rates], "o-", label="W1, one server")
    for servers, count, rate in replicas or []:
        if servers > 1:
            ax.plot([count], [rate], "s", label=f"W5, {servers} servers")
    ax.axhline(limit, color="tab:red", label=f"pgbench limit ({limit:.0f}/s)")
    ax.axhline(limit / 2, color="tab:red", linestyle="--", label="50% of the limit")
    ax.axhline(1000, color="tab:gray", linestyle=":", label="target 1,000/s")
    ax.set_xscale("log")
    _plain_log_axis(ax.xaxis)
    ax.set_xticks(workers)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("simulated workers")
    ax.set_ylabel("jobs completed per second")
    ax.set_title("W1 throughput")
    ax.grid(True, alpha=0.3)
    # beside the axes: inside, it would hide the limit lines near the top
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    return _save(figure, path)


def depth(rows: list[tuple[int, float, float]], path: Path) -> Path:
    """W2 pick p50 and p99 against the queue's depth."""
    figure, ax = plt.subplots(figsize=(7, 4.2))
    depths = [d for d, _, _ in rows]
    ax.plot(depths, [p50 for _, p50, _ in rows], "o-", label="p50")
    ax.plot(depths, [p99 for _, _, p99 in rows], "o-", label="p99")
    ax.axhline(10, color="tab:gray", linestyle=":", label="target p99 10 ms")
    ax.set_xscale("log")
    ax.set_xticks(depths)
    ax.set_xticklabels([f"{d:,}" for d in depths])
    ax.set_ylim(bottom=0)
    ax.set_xlabel("queued jobs")
    ax.set_ylabel("pick latency (ms)")
    ax.set_title("W2 pick latency against queue depth")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return _save(figure, path)


def heartbeats(
    quantiles: list[float],
    from_due: list[float],
    from_sent: list[float],
    workers: int,
    path: Path,
) -> Path:
    """W3 latency distribution: the share of heartbeats answered within each latency."""
    figure, ax = plt.subplots(figsize=(7, 4.2))
    shares = [q * 100 for q in quantiles]
    # a log axis cannot show zero; the clock's resolution is far below this anyway
    ax.plot([max(v, 0.01) for v in from_due], shares, label="from the time it was due")
    ax.plot([max(v, 0.01) for v in from_sent], shares, label="from the time it was sent")
    ax.axvline(50, color="tab:gray", linestyle=":", label="target p99 50 ms")
    ax.axhline(99, color="tab:gray", linestyle="--", linewidth=0.8)
    ax.set_xscale("log")
    _plain_log_axis(ax.xaxis)
    ax.set_ylim(0, 100.5)
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("heartbeats answered within (%)")
    ax.set_title(f"W3 heartbeat latency, {workers:,} workers at one beat per 5 s")
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(fontsize="small", loc="lower right")
    return _save(figure, path)
