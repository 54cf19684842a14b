"""Loading policy plugins from the `corral` entry-point group (the built-in ones are
registered there too), with their enable switches and their settings from the config file.

A plugin is a class with hook implementations (`@hookimpl` methods) and three class
attributes: `name`, `Settings` (a msgspec Struct whose defaults are the plugin's
defaults) and `enabled_by_default`. It is built with its decoded settings:
`Plugin(settings)`.
"""

from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import ClassVar, Protocol

import msgspec
import pluggy

from core import hookspecs
from core.config import ConfigError


class Plugin(Protocol):
    name: ClassVar[str]
    Settings: ClassVar[type[msgspec.Struct]]
    enabled_by_default: ClassVar[bool]

    def __init__(self, settings: msgspec.Struct) -> None: ...


class LoadedPlugin(msgspec.Struct, frozen=True, kw_only=True):
    """A plugin as `corral plugins` shows it."""

    name: str
    source: str
    enabled: bool
    hooks: list[str]
    settings: dict[str, object]


def _source(ep: EntryPoint) -> str:
    dist = ep.dist
    if dist is not None and dist.name == "corral":
        return "built-in"
    origin = f"{dist.name} {dist.version}" if dist is not None else "?"
    return f"{ep.value} ({origin})"


def _switched_off(table: Mapping[str, object] | None) -> bool:
    return table is not None and table.get("enabled") is False


class Plugins:
    """The plugin manager of one server process.

    Built-in plugins are registered first, then the others by name. pluggy calls the last
    registered first, so a studio's plugin answers a first-result hook before the built-in
    one it refines.
    """

    def __init__(
        self,
        settings: Mapping[str, Mapping[str, object]],
        *,
        extra: list[type[Plugin]] | None = None,
    ) -> None:
        self.manager = pluggy.PluginManager(hookspecs.PROJECT)
        self.manager.add_hookspecs(hookspecs)
        self.loaded: list[LoadedPlugin] = []
        points = sorted(
            entry_points(group=hookspecs.PROJECT),
            key=lambda ep: (_source(ep) != "built-in", ep.name),
        )
        known = {ep.name for ep in points} | {cls.name for cls in extra or []}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ConfigError(
                f"[plugins] names unknown plugin(s) {', '.join(unknown)}; "
                f"installed: {', '.join(sorted(known))}"
            )
        seen: set[str] = set()
        candidates: list[tuple[type[Plugin], str]] = []
        for ep in points:
            if _switched_off(settings.get(ep.name)):
                # switched off: not even imported, so a broken one cannot stop the server
                self.loaded.append(
                    LoadedPlugin(
                        name=ep.name, source=_source(ep), enabled=False, hooks=[], settings={}
                    )
                )
                seen.add(ep.name)
                continue
            candidates.append((_load_entry_point(ep), _source(ep)))
        candidates += [(cls, f"{cls.__module__}.{cls.__qualname__}") for cls in extra or []]
        for cls, source in candidates:
            if cls.name in seen:
                raise ConfigError(f"two plugins are named {cls.name!r}")
            seen.add(cls.name)
            self._load(cls, source, dict(settings.get(cls.name, {})))

    def _load(self, cls: type[Plugin], source: str, table: dict[str, object]) -> None:
        enabled = table.pop("enabled", cls.enabled_by_default)
        if not isinstance(enabled, bool):
            raise ConfigError(f"[plugins.{cls.name}] enabled must be true or false")
        try:
            settings = msgspec.convert(table, cls.Settings)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"[plugins.{cls.name}] {exc}") from exc
        plugin = cls(settings)
        hooks: list[str] = []
        if enabled:
            self.manager.register(plugin, name=cls.name)
            hooks = sorted(h.name for h in self.manager.get_hookcallers(plugin) or [])
        self.loaded.append(
            LoadedPlugin(
                name=cls.name,
                source=source,
                enabled=enabled,
                hooks=hooks or _declared_hooks(cls),
                settings=msgspec.to_builtins(settings),
            )
        )

    @property
    def hook(self) -> pluggy.HookRelay:
        return self.manager.hook

    def enabled(self, name: str) -> bool:
        return any(p.name == name and p.enabled for p in self.loaded)

    def implements(self, hook_name: str) -> bool:
        caller: pluggy.HookCaller = getattr(self.manager.hook, hook_name)
        return bool(caller.get_hookimpls())


def _declared_hooks(cls: type[Plugin]) -> list[str]:
    return sorted(name for name in dir(cls) if name.startswith("corral_"))


def _load_entry_point(ep: EntryPoint) -> type[Plugin]:
    try:
        cls = ep.load()
    except Exception as exc:
        raise ConfigError(f"plugin {ep.name!r} ({ep.value}) cannot be loaded: {exc}") from exc
    for attr in ("name", "Settings", "enabled_by_default"):
        if not hasattr(cls, attr):
            raise ConfigError(f"plugin {ep.name!r} ({ep.value}) has no {attr!r} attribute")
    if cls.name != ep.name:
        raise ConfigError(f"plugin {ep.value} is named {cls.name!r} but registered as {ep.name!r}")
    plugin: type[Plugin] = cls
    return plugin
