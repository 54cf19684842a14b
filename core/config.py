"""The server's settings: a TOML file decoded into these Structs.

A key the Structs do not know, or a value of the wrong type, stops the start-up with a
message naming it, so a typo never silently falls back to a default.
"""

import re
from pathlib import Path
from typing import Annotated

import msgspec

Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Positive = Annotated[int, msgspec.Meta(gt=0)]
Seconds = Annotated[float, msgspec.Meta(gt=0)]


class ServerConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    host: str = "127.0.0.1"
    port: Port = 19211
    # the embedded PostgreSQL and anything else Corral keeps on disk
    data_dir: str = "corral-data"
    # any PostgreSQL >= 14 instead of the embedded one
    database_url: str | None = None
    # one line per HTTP request; off by default, since a farm's workers make thousands a
    # second (the line costs the server more than some of those requests do)
    access_log: bool = False
    # the key that encrypts secret values (a job type's secret settings); every server on
    # one database needs the same file. Unset: `secret.key` in data_dir, made when needed
    secret_key_file: str | None = None
    # the rules of the worker `corral serve --local-worker` starts, as `corral worker
    # --affinity` takes them ("LINUX,GPU;LINUX"); unset, it keeps the rules it has
    local_worker_affinity: str | None = None
    # server processes on the one port, each a whole server (`corral serve --processes`)
    processes: Positive = 1

    def secret_key_path(self) -> Path:
        return Path(self.secret_key_file or Path(self.data_dir) / "secret.key")


class LimitsConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    max_body_bytes: Positive = 8 * 1024 * 1024
    # levels of a job tree, the root and the leaves included (Coalition's limit is 8)
    max_depth: Positive = 8
    # rows one listing returns at most (events, where-queries)
    max_page: Positive = 10_000
    # direct children of one group
    max_children: Positive = 100_000
    # jobs one job may depend on
    max_dependencies: Positive = 1_000
    # bytes of one run's output in one heartbeat or finish (`corral worker` sends 256 KiB
    # at most)
    max_log_chunk: Positive = 1024 * 1024


class AffinitiesConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # an unknown affinity name in a job or worker rule is created (true) or refused (false)
    create_unknown: bool = True


class AuthConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # reads (GET) answered without a token; writes always need one once tokens exist
    public_reads: bool = False
    # user tokens may change and delete the jobs of other users too
    users_change_any: bool = False


class CommandsConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # regular expressions a job's whole command must match, for every user; with no
    # pattern here nor in `users`, any command is accepted
    allow: list[str] = msgspec.field(default_factory=list)
    # more patterns for one user (the job's `user`), on top of `allow`
    users: dict[str, list[str]] = msgspec.field(default_factory=dict)


class DispatchConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # seconds between planning passes when nothing wakes the planner earlier
    interval: Seconds = 1.0
    # how long a worker's pick waits for an assignment before answering "nothing"
    pick_wait: Seconds = 20.0
    # how long a legacy Coalition worker's pick waits before answering the empty tuple
    legacy_pick_wait: Seconds = 2.0
    # candidates taken from the queue per wanted slot in one pass
    candidates_per_slot: Positive = 4
    # a worker silent this long is TIMEOUT and its jobs go back to the queue
    worker_timeout: Seconds = 60.0
    # seconds between a busy native worker's heartbeats, told when it registers: each
    # carries its runs' new output, so a followed log lags by up to this, and each costs
    # the server and PostgreSQL about 2 ms of CPU (docs/scaling.md)
    heartbeat_interval: Seconds = 1.0
    # seconds between the timeout, dead-worker and delayed-retry passes
    timeout_interval: Seconds = 5.0
    dead_worker_interval: Seconds = 10.0
    retry_interval: Seconds = 1.0


class DashboardConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # seconds between passes sampling the farm for the page's history (the first sample
    # of each minute is kept); a pass finding this minute sampled changes nothing
    sample_interval: Seconds = 10.0
    # seconds of samples kept: older ones are pruned as the pass samples
    keep_samples: Seconds = 86400.0


class JobTypesConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # where a job of a job type finds its OUTPUT_DIR, on the node that runs it:
    # <output_dir>/<job id>, made as the command starts (shared storage suits it best)
    output_dir: str = "/tmp/corral-output"


class CoalitionConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # a folder holding Coalition's own browser frontend (its `public_html`), served at
    # /coalition/; a relative path is taken from the config file's folder
    web_frontend: str | None = None


Name = Annotated[str, msgspec.Meta(pattern="^[A-Za-z0-9_-]{1,64}$")]
Count = Annotated[int, msgspec.Meta(ge=0, le=10_000)]


class ServiceGroupConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One task group of a service: `count_init` copies of `command` at start, at most
    `count_max`."""

    # run through /bin/sh -c by corral worker
    command: Annotated[str, msgspec.Meta(min_length=1)]
    count_init: Count = 1
    count_max: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 1
    # ids of stored secrets whose names and values join the environment of each run
    secrets: list[str] = msgspec.field(default_factory=list)
    # affinity names, as in jobs
    affinity: str = ""


class ServiceConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # started by POST /v1/jobs/startall
    autostart: bool = False
    groups: dict[Name, ServiceGroupConfig] = msgspec.field(default_factory=dict)


class GenvidSettingsConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # JSON files: the JSON Schema of the settings document and its defaults (built-in
    # ones shaped like Genvid's when unset); relative paths are from the config's folder
    schema: str | None = None
    defaults: str | None = None
    # the AES-256-GCM key of the stored secrets; unset: genvid-secrets.key in data_dir
    secrets_key_file: str | None = None
    # seconds between reconcile passes of service counts
    reconcile_interval: Seconds = 1.0


class GenvidConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    settings: GenvidSettingsConfig = msgspec.field(default_factory=GenvidSettingsConfig)
    # [genvid.jobs.<name>.groups.<group>]: the service jobs this server defines
    jobs: dict[Name, ServiceConfig] = msgspec.field(default_factory=dict)


class AweConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # runs of one workunit before its job is suspended (1 when the job says noretry)
    max_work_failure: Positive = 3
    # consecutive failed runs before a client is suspended
    max_client_failure: Positive = 5
    # the longest a checkout waits for the planner before "No eligible workunit found"
    checkout_wait: Seconds = 1.0
    # bytes one node of the node store may hold (an upload or all its parts together);
    # more is refused with 413 and nothing stored
    max_node_bytes: Positive = 1024 * 1024 * 1024
    # seconds between passes of the expiry: completed and deleted jobs whose expiration
    # (`PUT /job/<id>?expiration=`) has passed are removed
    expiry_interval: Seconds = 60.0


class Config(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    limits: LimitsConfig = msgspec.field(default_factory=LimitsConfig)
    affinities: AffinitiesConfig = msgspec.field(default_factory=AffinitiesConfig)
    auth: AuthConfig = msgspec.field(default_factory=AuthConfig)
    commands: CommandsConfig = msgspec.field(default_factory=CommandsConfig)
    dispatch: DispatchConfig = msgspec.field(default_factory=DispatchConfig)
    dashboard: DashboardConfig = msgspec.field(default_factory=DashboardConfig)
    coalition: CoalitionConfig = msgspec.field(default_factory=CoalitionConfig)
    job_types: JobTypesConfig = msgspec.field(default_factory=JobTypesConfig)
    genvid: GenvidConfig = msgspec.field(default_factory=GenvidConfig)
    awe: AweConfig = msgspec.field(default_factory=AweConfig)
    # [plugins.<name>]: `enabled = true|false` and the plugin's own settings
    plugins: dict[str, dict[str, object]] = msgspec.field(default_factory=dict)


class ConfigError(Exception):
    """The configuration file cannot be used; the message names the file and the key."""


def load(path: Path | None) -> Config:
    """Read `path` (TOML), or the defaults when there is none."""
    if path is None:
        return Config()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        config = msgspec.toml.decode(raw, type=Config)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"config file {path}: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    _check_patterns(path, config.commands)
    _check_services(path, config.genvid)
    return _with_genvid_files(path, _with_frontend(path, config))


def _check_services(path: Path, genvid: GenvidConfig) -> None:
    for name, service in genvid.jobs.items():
        for group_name, group in service.groups.items():
            if group.count_init > group.count_max:
                raise ConfigError(
                    f"config file {path}: genvid.jobs.{name}.groups.{group_name}: count_init "
                    f"({group.count_init}) is above count_max ({group.count_max})"
                )


def _with_genvid_files(path: Path, config: Config) -> Config:
    """The config with the files of `[genvid.settings]` taken from the config's folder."""
    settings = config.genvid.settings
    files = {
        key: str((path.parent / value).resolve())
        for key in ("schema", "defaults", "secrets_key_file")
        if (value := getattr(settings, key)) is not None
    }
    if not files:
        return config
    genvid = msgspec.structs.replace(
        config.genvid, settings=msgspec.structs.replace(settings, **files)
    )
    return msgspec.structs.replace(config, genvid=genvid)


def _with_frontend(path: Path, config: Config) -> Config:
    """The config with `[coalition] web_frontend` made absolute, once it is known to be a
    folder holding an index.html (a wrong path would otherwise show as 404s only)."""
    folder = config.coalition.web_frontend
    if folder is None:
        return config
    resolved = (path.parent / folder).resolve()
    if not (resolved / "index.html").is_file():
        raise ConfigError(
            f"config file {path}: coalition.web_frontend: {folder!r} is not a folder with an "
            "index.html (Coalition's public_html)"
        )
    return msgspec.structs.replace(
        config, coalition=msgspec.structs.replace(config.coalition, web_frontend=str(resolved))
    )


def _check_patterns(path: Path, commands: CommandsConfig) -> None:
    lists = {"commands.allow": commands.allow}
    lists |= {f"commands.users.{user}": patterns for user, patterns in commands.users.items()}
    for key, patterns in lists.items():
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ConfigError(
                    f"config file {path}: {key}: {pattern!r} is not a regular expression: {exc}"
                ) from None
