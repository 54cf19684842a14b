"""The legacy Coalition worker protocol (`/workers/pickjob`, `/heartbeat`, `/endjob`), so
existing Coalition workers connect unchanged. Switch it off when none are left:

    [plugins.coalition_workers]
    enabled = false

It implements no scheduling hook: the server mounts the protocol's routes when it is on.
"""

import msgspec


class CoalitionWorkersSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class CoalitionWorkersPlugin:
    name = "coalition_workers"
    Settings = CoalitionWorkersSettings
    enabled_by_default = True

    def __init__(self, settings: CoalitionWorkersSettings) -> None:
        self.settings = settings
