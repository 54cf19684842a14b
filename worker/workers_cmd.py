"""`corral workers`: list the workers, stop and start them, edit their affinity rules
(through the Coalition API's worker routes)."""

import argparse
import sys
import time

import msgspec

from worker import output
from worker.client import Client
from worker.errors import CommandError
from worker.wire import WorkerRow


def workers(args: argparse.Namespace) -> int:
    with Client(args.server, args.token) as client:
        if args.worker_command in (None, "list"):
            return _list(client, args.json)
        known = {w.name for w in client.get("/api/workers", list[WorkerRow])}
        unknown = [name for name in args.names if name not in known]
        if unknown:
            raise CommandError(f"no such worker: {', '.join(unknown)} (see corral workers)")
        if args.worker_command == "edit":
            [name] = args.names
            client.send("POST", "/api/workers", {name: {"affinity": args.affinity}}, int)
            rules = args.affinity.replace(";", " | ") or "none"
            print(f"{name}: affinity rules {rules}")
            return 0
        path = "/api/stopworkers" if args.worker_command == "stop" else "/api/startworkers"
        client.send("POST", path, args.names, int)
    done = "stopped" if args.worker_command == "stop" else "started"
    print(f"{done} {' '.join(args.names)}")
    return 0


def _list(client: Client, as_json: bool) -> int:
    rows = client.get("/api/workers", list[WorkerRow])
    if as_json:
        sys.stdout.write(msgspec.json.encode(rows).decode() + "\n")
        return 0
    now = time.time()
    table = [["NAME", "STATE", "ACTIVE", "AFFINITY", "CPU", "MEMORY FREE", "LAST JOB", "SEEN"]]
    for w in rows:
        table.append(
            [
                w.name,
                w.state,
                "yes" if w.active else "no",
                w.affinity.replace("\n", " | "),
                w.cpu,
                f"{w.free_memory}/{w.total_memory} MB",
                str(w.last_job or ""),
                f"{max(now - w.ping_time, 0):.0f}s ago",
            ]
        )
    output.table(table, sys.stdout, fit="AFFINITY")
    return 0
