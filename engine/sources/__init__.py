"""Signal sources: where the engine's signals come from, and the engine built around one.

- ``sim`` (default): the built-in simulated fleet, as before.
- ``prometheus``: instant PromQL queries on an interval (:mod:`engine.sources.prometheus`).
- ``alertmanager``: a webhook receiver; alerts are incidents (:mod:`engine.sources.alertmanager`).
- ``file``: a followed JSON Lines stream of samples (:mod:`engine.sources.jsonl`).

A real source runs the engine on an :class:`~engine.sources.observed.ObservedFleet` (the fleet
model filled from observations; stale signals are NaN) with the actuators of config.toml (a
router of command and webhook actuators; dry-run until enabled). :func:`prepare_source` reads
config.toml and the mapping files (errors name the file and the key) and returns what
:class:`~engine.live.LiveEngine` needs::

    setup = prepare_source(data_dir, source="prometheus", url="http://127.0.0.1:9090")
    live = LiveEngine(data_dir, policy=setup.policy, engine_factory=setup.engine_factory, ...)
    setup.install(live)        # the sources start and stop with the live engine
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from engine.config import ConnectConfig, load_connect_config
from engine.policy.bundle import Policy, load_policy
from engine.policy.loader import PolicyError
from engine.sources.base import SampleStore, SignalSource

__all__ = ["SourceSetup", "prepare_source", "build_engine_factory", "SignalSource", "SampleStore", "SOURCE_KINDS"]

SOURCE_KINDS = ("sim", "prometheus", "alertmanager", "file")


@dataclass
class SourceSetup:
    """Everything a face needs to run the engine on a source."""

    kind: str
    config: ConnectConfig
    policy: Policy
    sources: list[SignalSource] = field(default_factory=list)
    router: Any = None  # engine.actuators.ActuatorRouter for real sources
    dry_run: bool = False  # forced: a real source with no enabled actuator
    notes: list[str] = field(default_factory=list)  # what to tell the operator at start
    engine_factory: Callable[..., Any] | None = None  # None: LiveEngine's default (the simulator)

    @property
    def real(self) -> bool:
        return self.kind != "sim"

    def install(self, live: Any) -> None:
        """Run the sources alongside ``live`` (a LiveEngine built with this setup's factory)."""
        live.services[:0] = self.sources

    def console_kwargs(self) -> dict[str, Any]:
        """What ``open_live_session`` (ggen console) takes to build this source's engine."""
        if not self.real:
            return {}
        factory = self.engine_factory
        assert factory is not None

        def engine_class(*args: Any, script: Any = None, **kwargs: Any) -> Any:
            return factory(*args, **kwargs)  # no scripted faults on a real source

        return {"engine_class": engine_class}

    def start_sources(self, live: Any) -> None:
        """Start the sources beside a live engine that is already running (``ggen console``
        starts its engine itself); they stop with it. On failure the live engine is stopped."""
        try:
            for src in self.sources:
                live.services.append(src)
                src.start()
        except BaseException:
            live.stop()
            raise

    def describe(self) -> str:
        if not self.real:
            return "the simulated fleet"
        return ", ".join(f"{s.kind} {s.target}" for s in self.sources)


def prepare_source(
    data_dir: Any,
    *,
    source: str | None = None,
    url: str | None = None,
    listen: str | None = None,
    path: str | None = None,
    policy: Policy | None = None,
    config: ConnectConfig | None = None,
) -> SourceSetup:
    """Read config.toml (``[source]``, ``[sources.*]``, ``[actuators]``) and the mapping file, apply
    the command line's overrides, and build the source. Raises PolicyError (file and key named)
    for a bad configuration or mapping, ValueError for a bad command-line value."""
    cfg = config if config is not None else load_connect_config(data_dir.config_path)
    kind = source or cfg.source.kind
    if kind not in SOURCE_KINDS:
        raise ValueError(f"unknown source {kind!r} (known: {', '.join(SOURCE_KINDS)})")
    pol = policy or load_policy(cfg.resolve(cfg.source.runbooks))
    setup = SourceSetup(kind=kind, config=cfg, policy=pol)
    if kind == "sim":
        for flag, value in (("--url", url), ("--listen", listen), ("--path", path)):
            if value:
                raise ValueError(f"{flag} needs a real source (--source prometheus, alertmanager or file)")
        return setup
    setup.sources = [_build_source(kind, cfg, url=url, listen=listen, path=path)]
    from engine.actuators import build_router

    setup.router = build_router(cfg.actuators)
    if not setup.router.any_enabled:
        setup.dry_run = True
        why = "no actuator is configured" if not cfg.actuators.configured else "no actuator has enabled = true"
        setup.notes.append(f"dry-run: {why} in {cfg.path or 'config.toml'} [actuators]; actions are planned and recorded, not carried out")
    setup.engine_factory = build_engine_factory(setup)
    return setup


def _build_source(kind: str, cfg: ConnectConfig, *, url: str | None, listen: str | None, path: str | None) -> SignalSource:
    from engine.config import AlertmanagerSource as AmCfg, PrometheusSource as PromCfg

    where = str(cfg.path or "config.toml")
    if kind == "prometheus":
        from engine.sources.mapping import load_prometheus_mapping
        from engine.sources.prometheus import PrometheusSource

        pc = cfg.sources.prometheus
        if url:
            try:
                PromCfg(url=url)
            except Exception:
                raise ValueError(f"--url {url!r} is not an http:// or https:// URL") from None
        _, mapping = load_prometheus_mapping(cfg.resolve(pc.mapping))
        return PrometheusSource(
            url or pc.url, mapping, interval_ms=pc.interval_ms, timeout_ms=pc.timeout_ms, stale_after_ms=pc.stale_ms,
            window=pc.window, max_parallel=pc.max_parallel, headers=pc.headers,
        )
    if kind == "alertmanager":
        from engine.sources.alertmanager import AlertmanagerSource
        from engine.sources.mapping import load_alertmanager_mapping

        ac = cfg.sources.alertmanager
        if listen:
            try:
                AmCfg(listen=listen)
            except Exception as exc:
                raise ValueError(f"--listen {listen!r}: expected HOST:PORT ({_first_error(exc)})") from None
        _, mapping = load_alertmanager_mapping(cfg.resolve(ac.mapping))
        return AlertmanagerSource(listen or ac.listen, mapping, path=ac.path, bearer_token=ac.bearer_token, max_body_bytes=ac.max_body_bytes)
    from engine.sources.jsonl import FileSource
    from engine.sources.mapping import load_file_mapping

    fc = cfg.sources.file
    target = path or fc.path
    if not target:
        raise PolicyError(where, "sources.file.path", "no file to follow: give --path FILE (or - for stdin) or set it here")
    if path is None and target != "-":
        target = str(cfg.resolve(target))
    return FileSource(target, load_file_mapping(cfg.resolve(fc.mapping)), from_start=fc.from_start, pace=fc.pace, poll_ms=fc.poll_ms, stale_after_ms=fc.stale_after_ms)


def _first_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            return str(errors()[0]["msg"])
        except Exception:
            pass
    return str(exc)


def build_engine_factory(setup: SourceSetup) -> Callable[..., Any]:
    """An ``engine_factory`` for LiveEngine: the engine on an observed fleet fed by the setup's
    sources, acting through its actuator router."""
    from engine.core import Engine
    from engine.sources.observed import ObservedFleet

    def factory(policy: Policy, **kwargs: Any) -> Engine:
        fleet = ObservedFleet(policy.fleet, policy.mitigation, setup.sources, seed=kwargs.get("seed", 1))
        if setup.dry_run:
            kwargs["dry_run"] = True
        eng = Engine(policy, fleet=fleet, actuator=setup.router, **kwargs)
        fleet.notify = eng.notice
        for src in setup.sources:
            src.bind(eng)
        eng.notice("source", f"watching {setup.describe()}" + (f"; {setup.notes[0]}" if setup.notes else ""), source=setup.kind)
        return eng

    return factory
