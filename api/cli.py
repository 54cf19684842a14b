"""The `corral` command."""

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType

import uvicorn

from api.app import create_app
from core.config import Config, ConfigError, load
from core.embedded import EmbeddedPostgres


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="corral", description="Corral, a render farm scheduler")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the server (embedded PostgreSQL by default)")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 19211)")
    serve.add_argument(
        "--data-dir", type=Path, help="where the embedded PostgreSQL lives (default ./corral-data)"
    )
    serve.add_argument(
        "--database-url",
        help="use this PostgreSQL (>= 14) instead of the embedded one; "
        "also taken from CORRAL_DATABASE_URL",
    )
    serve.add_argument("--config", type=Path, help="a TOML configuration file")

    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = load(args.config)
    except ConfigError as exc:
        print(f"corral: {exc}", file=sys.stderr)
        return 2
    return _serve(args, config)


def _serve(args: argparse.Namespace, config: Config) -> int:
    host: str = args.host or config.server.host
    port: int = config.server.port if args.port is None else args.port
    data_dir: Path = args.data_dir or Path(config.server.data_dir)
    database_url: str | None = (
        args.database_url or os.environ.get("CORRAL_DATABASE_URL") or config.server.database_url
    )
    # uvicorn re-raises SIGTERM once it has shut down; turn it into an exit so the
    # embedded PostgreSQL below is stopped cleanly too
    signal.signal(signal.SIGTERM, _exit_on_signal)
    embedded: EmbeddedPostgres | None = None
    try:
        if database_url is None:
            embedded = EmbeddedPostgres(data_dir)
            database_url = embedded.url
            logging.getLogger("corral").info("embedded PostgreSQL in %s", embedded.path)
        uvicorn.run(create_app(config, database_url), host=host, port=port, log_level="info")
    except KeyboardInterrupt:
        pass
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())
