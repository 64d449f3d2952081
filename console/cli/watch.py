"""``ggen watch``: the live engine without a screen, for a server or a test.

It runs a :class:`~engine.live.LiveEngine` on the data directory (taking its lock), serves the
control socket so every other ``ggen`` command can reach it, and prints one line per incident
event (and engine notice) as it happens, or JSON lines with ``--json``. SIGTERM and SIGINT stop it
cleanly: the engine thread stops, the socket file is removed, the lock released, exit 0.

Where the engine's signals come from is chosen in :func:`_engine_factory`; today that is the
simulated fleet (``--speed``, ``--seed``, ``--scenario``). Other sources plug in there.
"""
from __future__ import annotations

import queue
import signal
import sys
import threading
from typing import Any, Callable

import click

from console.cli.common import EXIT_FAILED, EXIT_REFUSED, EXIT_USAGE, data_dir, fail, safe_text
from console.cli.remote import Command, login_name

MAX_PENDING_LINES = 20_000


def _engine_factory(scenario: Any) -> Callable[..., Any] | None:
    """How the engine is built: None means the default simulated fleet."""
    return None


def _scenario_player(live: Any, sc: Any) -> Callable[[Any], None]:
    """Plays a drill scenario's faults on the live clock (after its warm-up)."""
    eng = live.engine
    t0 = eng.now_ms + sc.scenario.warmup_s * 1000
    pending = sorted(sc.faults, key=lambda f: f.at_s)

    def play(engine: Any) -> None:
        while pending and engine.now_ms >= t0 + int(pending[0].at_s * 1000):
            f = pending.pop(0)
            engine.inject(f.kind, f.target, params=f.params, duration_s=f.duration_s, actor=f"scenario:{sc.name}")

    return play


def _event_line(e: dict[str, Any]) -> str:
    from engine.clock import iso_utc

    short = e["incident_id"].removeprefix("urn:uuid:")[:8]
    return f"{iso_utc(e['observed_at_ms'])[:19]}Z {e['kind']:22} {e['severity']} {e['incident_type']:22} {short} {safe_text(e['summary'])}"


def _notice_line(n: dict[str, Any]) -> str:
    from engine.clock import iso_utc

    return f"{iso_utc(int(n.get('at_ms', 0)))[:19]}Z notice {str(n.get('kind')):15} {safe_text(n.get('text', ''))}"


@click.command(cls=Command)
@click.option("--speed", type=click.FloatRange(min=0.01, max=100_000), default=1.0, show_default=True, help="Simulated seconds per real second.")
@click.option("--seed", type=click.IntRange(min=0), default=1, show_default=True, help="Seed of the simulated fleet.")
@click.option("--scenario", metavar="NAME", help="Play a drill scenario's faults (see `ggen drill --list`).")
@click.option("--dry-run", is_flag=True, help="Plan and record actions without applying them.")
@click.option("--kill-switch", is_flag=True, help="Start with automation stopped: people follow the runbooks.")
@click.option("--actor", default=None, metavar="NAME", help="Who runs this engine (default: GGEN_ACTOR or the login name).")
@click.option("--notices/--no-notices", default=True, show_default=True, help="Also print engine notices (faults, operator actions, pages).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line ({\"type\": \"event\"|\"notice\", ...}).")
@click.option("--source", type=click.Choice(["sim", "prometheus", "alertmanager", "file"]), default=None, help="Where signals come from (default: [source] in DATA_DIR/config.toml, else sim).")
@click.option("--url", default=None, metavar="URL", help="With --source prometheus: the Prometheus server.")
@click.option("--listen", default=None, metavar="HOST:PORT", help="With --source alertmanager: where to receive Alertmanager's webhooks.")
@click.option("--path", "sample_path", default=None, metavar="FILE", help="With --source file: the JSON Lines file of samples to follow (- for stdin).")
def watch(speed: float, seed: int, scenario: str | None, dry_run: bool, kill_switch: bool, actor: str | None, notices: bool, as_json: bool, source: str | None, url: str | None, listen: str | None, sample_path: str | None) -> None:
    """Run the live engine headless and print incident events until SIGTERM/SIGINT."""
    import orjson

    from engine.control import attach_control
    from engine.control.server import SocketInUse
    from engine.live import DataDirLocked, LiveEngine
    from engine.policy.loader import PolicyError

    who = actor or login_name()
    sc = None
    if scenario is not None:
        from engine.drill.scenario import load_scenario, load_scenarios

        try:
            sc = load_scenario(scenario)
        except PolicyError as exc:
            fail(str(exc), EXIT_FAILED)
        except (KeyError, FileNotFoundError, ValueError):
            fail(f"--scenario: unknown scenario {scenario!r} (known: {', '.join(sorted(load_scenarios()))})", EXIT_USAGE)
    dd = data_dir()
    if source == "file" and sample_path is None and not dd.config_path.exists():
        # Without a config file there is no [sources.file] path to fall back on.
        fail("--path FILE is needed with --source file (- reads stdin)", EXIT_USAGE)
    from engine.sources import prepare_source

    try:
        setup = prepare_source(dd, source=source, url=url, listen=listen, path=sample_path)
    except PolicyError as exc:
        fail(str(exc), EXIT_FAILED)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    if setup.real and (sc is not None or speed != 1.0):
        fail(f"--scenario and --speed drive the simulator; the {setup.kind} source runs on the wall clock", EXIT_USAGE)
    flags = ", ".join(x for x, on in (("kill switch ON", kill_switch), ("dry-run", dry_run)) if on)
    try:
        live = LiveEngine(
            dd,
            seed=seed,
            speed=speed,
            dry_run=dry_run,
            kill_switch=kill_switch,
            description=f"ggen watch by {who} (seed {seed}{', scenario ' + sc.name if sc else ''})",  # what never changes: see engine.live
            policy=setup.policy,
            engine_factory=setup.engine_factory or _engine_factory(sc),
        )
        setup.install(live)
    except PolicyError as exc:
        fail(str(exc), EXIT_FAILED)
    control = attach_control(live)
    try:  # the ladder pages the roster's people, and pages are delivered, as under ggen console
        from engine.delivery import attach_delivery
        from engine.oncall import attach_roster

        attach_roster(live)
        attach_delivery(live)
    except PolicyError as exc:
        fail(str(exc), EXIT_FAILED)
    lines: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue(maxsize=MAX_PENDING_LINES)
    dropped = [0]

    def put(kind: str, item: dict[str, Any]) -> None:
        try:
            lines.put_nowait((kind, item))
        except queue.Full:  # stdout is not keeping up; never block the engine
            dropped[0] += 1

    live.engine.subscribe(lambda e: put("event", e.to_dict()))
    if notices:
        live.engine.on_notice(lambda n: put("notice", dict(n)))
    if sc is not None:
        live.on_tick.append(_scenario_player(live, sc))
    try:
        live.start()
    except DataDirLocked as exc:
        fail(str(exc), EXIT_REFUSED)
    except SocketInUse as exc:
        fail(str(exc), EXIT_REFUSED)
    except OSError as exc:
        fail(f"cannot start the engine on {dd.root}: {exc}", EXIT_FAILED)

    stop = threading.Event()
    got: list[int] = []

    def on_signal(signum: int, frame: Any) -> None:
        got.append(signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    click.echo(
        f"ggen watch: engine pid {__import__('os').getpid()} on {dd.root} (speed {speed:g}x, seed {seed}"
        + (f", scenario {sc.name}" if sc else "")
        + (f", {flags}" if flags else "")
        + (f", source {setup.describe()}" if setup.real else "")
        + f"); control socket {dd.control_socket_path}; stop with SIGTERM or Ctrl-C",
        err=True,
    )
    out = sys.stdout
    code = 0

    def emit(kind: str, item: dict[str, Any]) -> None:
        if as_json:
            out.write(orjson.dumps(dict(item, type=kind), default=str).decode() + "\n")
        else:
            out.write((_event_line(item) if kind == "event" else _notice_line(item)) + "\n")

    try:
        while not stop.is_set():
            try:
                kind, item = lines.get(timeout=0.2)
            except queue.Empty:
                if live.crash is not None:
                    click.echo(f"ggen: the engine stopped: {type(live.crash).__name__}: {live.crash}", err=True)
                    code = EXIT_FAILED
                    break
                continue
            emit(kind, item)
            while True:
                try:
                    kind, item = lines.get_nowait()
                except queue.Empty:
                    break
                emit(kind, item)
            out.flush()
    except BrokenPipeError:
        stop.set()
    finally:
        live.stop()
        try:
            while True:
                kind, item = lines.get_nowait()
                emit(kind, item)
        except (queue.Empty, BrokenPipeError):
            pass
        try:
            out.flush()
        except BrokenPipeError:
            pass
        eng = live.engine
        open_n = sum(1 for i in eng.incidents.values() if i.open)
        why = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT"}.get(got[0], str(got[0])) if got else "end of output"
        extra = f"; {dropped[0]} lines dropped (output too slow)" if dropped[0] else ""
        errs = len(live.receipt_errors) + len(control.oplog.errors)
        click.echo(f"ggen watch: stopped on {why}: {len(eng.incidents)} incidents ({open_n} open), {control.server.requests} control requests, {errs} receipt errors{extra}", err=True)
    sys.exit(code)
