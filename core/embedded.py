"""The embedded PostgreSQL (the `pgserver` wheel) that `corral serve` starts by default."""

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pgserver.postgres_server import PostgresServer


class EmbeddedPostgres:
    """A PostgreSQL server living in `<data_dir>/pg`, listening on a Unix socket only.

    Corral processes that use the same data directory share it; it stops when the last
    of them lets go (or keeps running after a crash, and is picked up again).
    """

    def __init__(self, data_dir: Path) -> None:
        with warnings.catch_warnings():
            # pgserver asks platformdirs for a runtime directory it does not use here
            warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
            from pgserver.postgres_server import get_server

        self.path = data_dir.resolve() / "pg"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._server: PostgresServer = get_server(self.path, cleanup_mode="stop")

    @property
    def url(self) -> str:
        return self._server.get_uri()

    def stop(self) -> None:
        self._server.cleanup()
