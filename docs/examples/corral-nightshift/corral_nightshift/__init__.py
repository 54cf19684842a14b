"""Night shift, an example Corral scheduling plugin: jobs tagged `heavy` wait for the
night unless few of them run, and every job state change is written to a file."""

from corral_nightshift.plugin import NightShiftPlugin, NightShiftSettings

__all__ = ["NightShiftPlugin", "NightShiftSettings"]
