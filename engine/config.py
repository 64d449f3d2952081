"""The ``[source]``, ``[sources.*]`` and ``[actuators]`` sections of the data directory's config.toml.

They say where the engine reads its signals (the built-in simulator, a Prometheus server, an
Alertmanager webhook, a JSON Lines file) and what carries out its actions on real systems (a
command, a webhook). Other sections of the same file (``[delivery]``, ...) belong to other parts
and are ignored here. Errors name the file and the key (``config.toml: field
actuators.scale-script.timeout_ms: Input should be greater than 0``).

The commented example is ``runbooks/config.example.toml``.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from engine.policy.loader import PolicyError, StrictModel, read_data_file, validate

SOURCE_KINDS = ("sim", "prometheus", "alertmanager", "file")
SourceKind = Literal["sim", "prometheus", "alertmanager", "file"]
RESERVED_ACTUATOR_NAMES = frozenset({"routes", "sim", "none"})
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,59}$")


def _http_url(v: str) -> str:
    parts = urlsplit(v)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{v!r} is not an http:// or https:// URL")
    return v


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) into its parts; raises ValueError naming the problem."""
    text = text.strip()
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:9097)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        p = int(port)
    except ValueError:
        raise ValueError(f"{text!r}: port {port!r} is not a number") from None
    if not 0 <= p <= 65535:
        raise ValueError(f"{text!r}: port {p} is outside 0..65535")
    return host, p


# ============================================================================ sources
class SourceChoice(StrictModel):
    """``[source]``: which source ``ggen watch`` / ``ggen console`` use when ``--source`` is not given."""

    kind: SourceKind = "sim"
    # The runbooks directory (fleet model, thresholds, runbooks) the engine loads, relative to this
    # file; default: the packaged runbooks/. A real system needs its own fleet.toml.
    runbooks: str | None = None


class PrometheusSource(StrictModel):
    """``[sources.prometheus]``: instant PromQL queries on an interval, one per mapped signal."""

    url: str = "http://127.0.0.1:9090"
    mapping: str | None = None  # mapping file; default runbooks/sources/prometheus.toml
    interval_ms: int = Field(default=5_000, ge=100, le=3_600_000)
    timeout_ms: int = Field(default=2_000, ge=50, le=120_000)
    stale_after_ms: int | None = Field(default=None, ge=100)  # default: 2.5 x interval_ms
    window: str | None = None  # replaces {window} in the mapping's queries (default: the mapping's)
    max_parallel: int = Field(default=4, ge=1, le=32)
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return _http_url(v)

    @field_validator("window")
    @classmethod
    def _window(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"\d+(ms|s|m|h|d)", v):
            raise ValueError(f"{v!r} is not a PromQL duration such as 30s, 1m, 5m")
        return v

    @property
    def stale_ms(self) -> int:
        return self.stale_after_ms if self.stale_after_ms is not None else int(self.interval_ms * 2.5)


class AlertmanagerSource(StrictModel):
    """``[sources.alertmanager]``: a receiver for Alertmanager webhook payloads (version 4)."""

    listen: str = "127.0.0.1:9097"
    path: str | None = None  # accept POSTs on this path only; default: any path
    mapping: str | None = None  # default runbooks/sources/alertmanager.toml
    bearer_token: str | None = None  # when set, requests must carry "Authorization: Bearer <token>"
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024)

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        parse_listen(v)
        return v

    @field_validator("path")
    @classmethod
    def _path(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith("/"):
            raise ValueError(f"{v!r} must start with /")
        return v


class FileSource(StrictModel):
    """``[sources.file]``: follow a JSON Lines stream of metric samples (``-`` reads stdin)."""

    path: str | None = None
    mapping: str | None = None  # optional: entity renames (same [rename.*] tables as the Prometheus mapping)
    from_start: bool = True  # read what the file already holds first (replay), then follow it
    pace: Literal["arrival", "timestamps"] = "arrival"
    poll_ms: int = Field(default=200, ge=10, le=60_000)
    stale_after_ms: int = Field(default=15_000, ge=100)


class SourcesSection(StrictModel):
    prometheus: PrometheusSource = PrometheusSource()
    alertmanager: AlertmanagerSource = AlertmanagerSource()
    file: FileSource = FileSource()


# ============================================================================ actuators
class _ActuatorBase(StrictModel):
    enabled: bool = False  # real actuators stay in dry-run until this is true
    actions: list[str] = Field(default_factory=list)  # informational: the actions routed here (see routes)


class CommandActuatorConfig(_ActuatorBase):
    """A program run once per action, the action as JSON on stdin, without a shell."""

    type: Literal["command"]
    command: list[str] = Field(min_length=1)
    timeout_ms: int = Field(default=10_000, ge=10, le=600_000)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    max_output_bytes: int = Field(default=64 * 1024, ge=256, le=16 * 1024 * 1024)

    @field_validator("command")
    @classmethod
    def _argv(cls, v: list[str]) -> list[str]:
        if not v[0].strip():
            raise ValueError("the program (first element) is empty")
        return v


class WebhookActuatorConfig(_ActuatorBase):
    """An HTTP POST of the action as JSON; retried on connection errors, 408, 425, 429 and 5xx."""

    type: Literal["webhook"]
    url: str
    timeout_ms: int = Field(default=5_000, ge=10, le=120_000)
    retries: int = Field(default=2, ge=0, le=10)  # attempts after the first
    backoff_ms: int = Field(default=500, ge=0, le=60_000)  # pause before retry n is backoff_ms * 2**(n-1)
    headers: dict[str, str] = Field(default_factory=dict)
    max_response_bytes: int = Field(default=64 * 1024, ge=256, le=16 * 1024 * 1024)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return _http_url(v)


ActuatorConfig = Annotated[Union[CommandActuatorConfig, WebhookActuatorConfig], Field(discriminator="type")]
_ACTUATOR = TypeAdapter(ActuatorConfig)


class ActuatorsSection(BaseModel):
    """``[actuators]``: ``routes`` (action -> actuator name, ``"*"`` for every other action) and one
    ``[actuators.<name>]`` table per actuator."""

    model_config = ConfigDict(frozen=True)

    routes: dict[str, str] = Field(default_factory=dict)
    defined: dict[str, Any] = Field(default_factory=dict)

    @property
    def configured(self) -> bool:
        return bool(self.defined)

    def route(self, action: str) -> str | None:
        return self.routes.get(action) or self.routes.get("*")

    @property
    def enabled_names(self) -> list[str]:
        return [n for n, a in self.defined.items() if a.enabled]


def _parse_actuators(path: Path, raw: Any) -> ActuatorsSection:
    if raw is None:
        return ActuatorsSection()
    if not isinstance(raw, dict):
        raise PolicyError(path, "actuators", "must be a table")
    routes = raw.get("routes", {})
    if not isinstance(routes, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in routes.items()):
        raise PolicyError(path, "actuators.routes", "must be a table of action = \"actuator name\"")
    defined: dict[str, Any] = {}
    for name, table in raw.items():
        if name == "routes":
            continue
        where = f"actuators.{name}"
        if not isinstance(table, dict):
            raise PolicyError(path, where, "must be a table ([actuators.<name>] with type = \"command\" or \"webhook\")")
        if name in RESERVED_ACTUATOR_NAMES or not _NAME.match(name):
            raise PolicyError(path, where, f"{name!r} cannot name an actuator (letters, digits, _ . -; not routes, sim or none)")
        try:
            defined[name] = _ACTUATOR.validate_python(table)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = [str(p) for p in err["loc"]]
            if loc and loc[0] in ("command", "webhook"):
                loc = loc[1:]  # the discriminator's branch name is not a key in the file
            if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
                loc = ["type"]
            raise PolicyError(path, ".".join([where, *loc]), err["msg"]) from None
    for action, target in routes.items():
        if target not in defined and target not in ("sim", "none"):
            known = ", ".join(sorted(defined)) or "none defined"
            raise PolicyError(path, f"actuators.routes.{action}", f"unknown actuator {target!r} (defined: {known}; or \"none\")")
    if defined and not routes:
        if len(defined) == 1:
            routes = {"*": next(iter(defined))}
        else:
            raise PolicyError(path, "actuators.routes", "several actuators are defined: say which takes which action (\"*\" = every other action)")
    return ActuatorsSection(routes=dict(routes), defined=defined)


# ============================================================================ the file
class _ConfigFile(BaseModel):
    """config.toml as this module sees it: its own sections; everything else is left alone."""

    model_config = ConfigDict(extra="ignore")
    source: SourceChoice = SourceChoice()
    sources: SourcesSection = SourcesSection()


class ConnectConfig(BaseModel):
    """What config.toml says about signal sources and actuators."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    path: Path | None = None
    source: SourceChoice = SourceChoice()
    sources: SourcesSection = SourcesSection()
    actuators: ActuatorsSection = ActuatorsSection()

    def resolve(self, relative: str | None) -> Path | None:
        """A path from the file, relative to the file's directory."""
        if relative is None:
            return None
        p = Path(relative).expanduser()
        if not p.is_absolute() and self.path is not None:
            p = self.path.parent / p
        return p


def load_connect_config(path: Path | str) -> ConnectConfig:
    """Read the source and actuator sections of ``path``; an absent file means the defaults
    (the simulator, no real actuator)."""
    path = Path(path)
    if not path.exists():
        return ConnectConfig(path=path)
    data = read_data_file(path)
    own = validate(path, data, _ConfigFile)
    actuators = _parse_actuators(path, data.get("actuators"))
    return ConnectConfig(path=path, source=own.source, sources=own.sources, actuators=actuators)


def example_config_path() -> Path:
    """The commented example of these sections, shipped under runbooks/."""
    from runbooks import RUNBOOKS_DIR

    return RUNBOOKS_DIR / "config.example.toml"
