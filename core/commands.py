"""The command policy: which commands jobs may carry ([commands] in the config).

Coalition's "command whitelist": with patterns configured, a job's whole command must
match one of the patterns for everyone (`allow`) or for the job's user (`users`). Every
way a command enters the farm (any submit path, an edit) goes through `check`.
"""

import re

from core.config import CommandsConfig
from core.errors import Forbidden


class CommandPolicy:
    def __init__(self, config: CommandsConfig) -> None:
        self._everyone = [re.compile(p) for p in config.allow]
        self._users = {u: [re.compile(p) for p in ps] for u, ps in config.users.items()}
        self._on = bool(self._everyone) or any(self._users.values())

    def check(self, user: str, command: str) -> None:
        """Refuse (403) a command no pattern allows for `user`. Groups carry no command."""
        if not self._on or not command:
            return
        own = self._users.get(user, [])
        if any(p.fullmatch(command) for p in (*self._everyone, *own)):
            return
        rules = "[commands] allow" + (f" and [commands.users] {user}" if own else "")
        shown = command if len(command) <= 80 else command[:77] + "..."
        raise Forbidden(f"the command {shown!r} matches no pattern of {rules}")
