"""`ggen console`: the live console, in the terminal or (with --serve) in a browser."""
from __future__ import annotations

import gc
import os
import shlex
import sys
from pathlib import Path
from typing import Any

import click

from console.cli.common import EXIT_FAILED, EXIT_NO_ENGINE, EXIT_USAGE, data_dir, fail


@click.command()
@click.option("--speed", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True, help="Simulated seconds per real second (1, 10, 60, ...).")
@click.option("--seed", type=click.IntRange(min=0), default=1, show_default=True, help="Seed of the simulated fleet.")
@click.option("--scenario", metavar="NAME", help="Play a scenario's fault timeline live (see `ggen drill --list`).")
@click.option("--replay", "replay", type=click.Path(dir_okay=False), metavar="FILE", help="Replay a recording (--record) or `ggen drill --json` output, in a temporary data directory.")
@click.option("--record", "record", type=click.Path(dir_okay=False), metavar="FILE", help="Record the session (seed, scenario, your actions) for --replay.")
@click.option("--dry-run", is_flag=True, help="Start with the safety governor in dry-run: actions are planned and recorded, not applied.")
@click.option("--fleet-size", type=click.IntRange(min=2), default=None, metavar="N", help="Run on a generated fleet of N services instead of runbooks/fleet.toml (scale tests).")
@click.option("--data-dir", "data_dir_opt", type=click.Path(file_okay=False), default=None, help="Data directory (same as the global --data-dir).")
@click.option("--actor", default=None, help="Your name on the actions you take. Default: $GGEN_ACTOR or your login name.")
@click.option("--attach", is_flag=True, help="Attach to the engine already running on the data directory (ggen console or ggen watch) instead of starting one.")
@click.option("--serve", is_flag=True, help="Serve the console to browsers (textual-serve): every browser attaches to one engine (started in the background when none runs).")
@click.option("--host", default="127.0.0.1", show_default=True, help="With --serve: the address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="With --serve: the port to listen on.")
@click.option("--source", type=click.Choice(["sim", "prometheus", "alertmanager", "file"]), default=None, help="Where signals come from (default: [source] in DATA_DIR/config.toml, else sim).")
@click.option("--url", default=None, metavar="URL", help="With --source prometheus: the Prometheus server.")
@click.option("--listen", default=None, metavar="HOST:PORT", help="With --source alertmanager: where to receive Alertmanager's webhooks.")
@click.option("--path", "sample_path", default=None, metavar="FILE", help="With --source file: the JSON Lines file of samples to follow.")
def console(
    speed: float,
    seed: int,
    scenario: str | None,
    replay: str | None,
    record: str | None,
    dry_run: bool,
    fleet_size: int | None,
    data_dir_opt: str | None,
    actor: str | None,
    attach: bool,
    serve: bool,
    host: str,
    port: int,
    source: str | None,
    url: str | None,
    listen: str | None,
    sample_path: str | None,
) -> None:
    """Open the live console: the engine on the simulated fleet, incidents, receipts and actions.

    Press ? inside for every key. One engine runs per data directory: if another holds it, this
    exits with code 3; --attach opens a console on that engine instead (quitting it leaves the
    engine running). With --serve, every browser gets a console attached to one engine: the one
    already running on the data directory, or one started in the background (ggen watch with
    these options) and stopped with the server.
    """
    from engine.datadir import DataDir

    dd = DataDir.resolve(data_dir_opt) if data_dir_opt else data_dir()
    if scenario and replay:
        fail("give either --scenario or --replay, not both", EXIT_USAGE)
    if replay and record:
        fail("--record cannot be used with --replay (the replay is already a recording)", EXIT_USAGE)
    if replay and not Path(replay).is_file():
        fail(f"--replay: no such file: {replay}", EXIT_USAGE)
    ctx = click.get_current_context()
    engine_opts = [name for name in ENGINE_OPTIONS if ctx.get_parameter_source(name) not in (None, click.core.ParameterSource.DEFAULT)]
    if attach and serve:
        fail("give either --attach or --serve, not both (--serve attaches every browser by itself)", EXIT_USAGE)
    if attach:
        if engine_opts:
            fail(f"--attach uses the engine that runs; {', '.join(_flag(n) for n in engine_opts)} configure a new one (leave them out)", EXIT_USAGE)
        _attach(dd, actor)
        return
    if serve:
        if record or fleet_size:
            fail("--record and --fleet-size cannot be served to several browsers at once (run `ggen console` with them in one terminal)", EXIT_USAGE)
        _serve(dd, host, port, engine_opts, actor, replay is not None)
        return

    # Everything made from here to the first frame (modules, policy, engine, widgets) lives as long
    # as the console: collecting it now only delays the first frame (two full collections, ~25 ms).
    # The console collects once and freezes it all after its first frame, then collects as usual.
    gc.disable()
    from engine.live import DataDirLocked
    from engine.policy.common import PolicyError
    from console.tui.session import ReplayError, open_live_session

    if source is None and url is None and listen is None and sample_path is None and not dd.config_path.exists():
        setup: Any = Simulator()  # nothing configured: the simulated fleet, without loading the sources
    else:
        from engine.sources import prepare_source

        try:
            setup = prepare_source(dd, source=source, url=url, listen=listen, path=sample_path)
        except PolicyError as exc:
            fail(str(exc), EXIT_FAILED)
        except ValueError as exc:
            fail(str(exc), EXIT_USAGE)
    if setup.real and (scenario or replay or record or fleet_size or speed != 1.0):
        fail(f"--scenario, --replay, --record, --fleet-size and --speed drive the simulator; the {setup.kind} source runs on the wall clock", EXIT_USAGE)
    try:
        session = open_live_session(
            dd,
            seed=seed,
            speed=speed,
            scenario=scenario,
            replay=Path(replay) if replay else None,
            record=Path(record) if record else None,
            dry_run=dry_run,
            fleet_size=fleet_size,
            actor=actor,
            policy=setup.policy,
            defer_services=True,  # the control socket and delivery start after the first frame
            **setup.console_kwargs(),
        )
        setup.start_sources(session.live)
    except DataDirLocked as exc:
        fail(f"{exc} (or `ggen console --attach` to watch that engine)", EXIT_NO_ENGINE)
    except (ReplayError, PolicyError) as exc:
        fail(str(exc), EXIT_USAGE if isinstance(exc, ReplayError) else EXIT_FAILED)
    except KeyError as exc:  # unknown scenario
        fail(str(exc.args[0]) if exc.args else str(exc), EXIT_USAGE)
    except OSError as exc:  # an unwritable data directory, a damaged ledger file
        fail(f"cannot start the engine on {dd.root}: {exc.strerror or exc}", EXIT_FAILED)
    except RuntimeError as exc:  # something else answers on the control socket
        fail(f"cannot start the engine on {dd.root}: {exc}", EXIT_NO_ENGINE)

    from console.tui.app import ConsoleApp

    try:
        ConsoleApp(session, freeze_startup_objects=True, exit_with_parent=_served()).run()
    finally:
        session.stop()
    if session.crash_text:
        last = session.crash_text.strip().splitlines()[-1] if session.crash_text.strip() else "unknown error"
        fail(f"the engine stopped: {last}", EXIT_FAILED)


class Simulator:
    """What ``prepare_source`` answers when no source is configured: the built-in simulated fleet."""

    kind = "sim"
    real = False
    policy = None

    def console_kwargs(self) -> dict[str, Any]:
        return {}

    def start_sources(self, live: Any) -> None:
        pass


ENGINE_OPTIONS = ("speed", "seed", "scenario", "replay", "record", "dry_run", "fleet_size", "source", "url", "listen", "sample_path")
WATCH_FLAGS = {"speed": "--speed", "seed": "--seed", "scenario": "--scenario", "dry_run": "--dry-run", "source": "--source", "url": "--url", "listen": "--listen", "sample_path": "--path"}


def _flag(name: str) -> str:
    return WATCH_FLAGS.get(name) or "--" + name.replace("_", "-")


def _attach(dd, actor: str | None) -> None:
    """``ggen console --attach``: a console over the engine already running on ``dd``."""
    from console.tui.attached import AttachedSession
    from console.tui.session import default_actor
    from engine.control.client import ControlError, NoEngine

    try:
        session = AttachedSession(dd, actor=actor or default_actor())
    except NoEngine as exc:
        fail(str(exc), EXIT_NO_ENGINE)
    except (ControlError, OSError) as exc:
        fail(f"the engine on {dd.root} did not answer: {exc}", EXIT_NO_ENGINE)
    from console.tui.app import ConsoleApp

    ConsoleApp(session, freeze_startup_objects=True, exit_with_parent=_served()).run()


def _served() -> bool:
    """Under ``ggen console --serve`` (textual-serve's web driver) the console's parent is the
    server: if the server goes away nobody will ever tell this console to quit, so it leaves."""
    return "web_driver" in os.environ.get("TEXTUAL_DRIVER", "")


def _serve(dd, host: str, port: int, engine_opts: list[str], actor: str | None, replay: bool) -> None:
    """Serve consoles to browsers with textual-serve. Every browser attaches to one engine (the
    one running on the data directory, else one started here as a ``ggen watch`` process and
    stopped with the server); a --replay is played for each browser on its own."""
    from textual_serve.server import Server

    argv = sys.argv[1:]
    engine = None
    if replay:
        args = _console_args(argv)  # each browser its own replay, in its own temporary data directory
        what = "a replay for each browser"
    else:
        engine, what = _engine_for_serving(dd, engine_opts, argv)
        args = ["--attach"] + (["--actor", actor] if actor else [])
    # exec: the console replaces textual-serve's shell, so the server is its parent (see _attach)
    command = "exec " + shlex.join([sys.executable, "-m", "console.cli.main", "--data-dir", str(dd.root), "console", *args])
    click.echo(f"serving the ggen console on http://{host}:{port} ({what}; data dir {dd.root}); Ctrl+C stops", err=True)
    try:
        Server(command, host=host, port=port, title="ggen console").serve()
    finally:
        if engine is not None:
            _stop_engine(engine)


def _engine_for_serving(dd, engine_opts: list[str], argv: list[str]):
    """The engine the browsers attach to: (the process started here or None, what it is)."""
    import subprocess

    from engine.control.client import ControlClient

    client = ControlClient(dd.control_socket_path)
    if not client.alive() and _locked(dd):
        _wait(client.alive, 15.0)  # an engine is starting (its socket comes after its first frame)
    if client.alive():
        if engine_opts:
            click.echo(f"ggen: warning: an engine already runs on {dd.root}; serving it as it is ({', '.join(_flag(n) for n in engine_opts)} ignored)", err=True)
        return None, f"every browser attached to the engine already running, pid {client.call('ping').get('pid')}"
    if _locked(dd):
        fail(f"an engine holds {dd.root} but does not answer on {dd.control_socket_path}; stop it or use another --data-dir", EXIT_NO_ENGINE)
    watch = [sys.executable, "-m", "console.cli.main", "--data-dir", str(dd.root), "watch", "--no-notices", *_watch_args(argv)]
    dd.ensure()
    log_path = dd.root / "serve-engine.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(watch, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    if not _wait(lambda: proc.poll() is not None or client.alive(), 60.0) or proc.poll() is not None:
        _stop_engine(proc)
        tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
        fail(f"the background engine did not start: {tail[0].removeprefix('ggen: ')}", EXIT_FAILED)
    return proc, f"every browser attached to one engine, pid {proc.pid} (ggen watch, log in {log_path})"


def _locked(dd) -> bool:
    """Whether a process holds the data directory's engine lock."""
    import fcntl
    import os

    if not dd.lock_path.exists():
        return False
    fd = os.open(dd.lock_path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def _wait(pred, timeout: float) -> bool:
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return bool(pred())


def _stop_engine(proc) -> None:
    """Stop the background engine as SIGTERM asks ggen watch to: cleanly, losing nothing."""
    import signal
    import subprocess

    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _watch_args(argv: list[str]) -> list[str]:
    """The engine options of the console's command line, as ``ggen watch`` takes them."""
    takes_value = {"--speed", "--seed", "--scenario", "--source", "--url", "--listen", "--path"}
    args = _console_args(argv)
    out: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        name = a.split("=", 1)[0]
        if name in takes_value:
            if "=" in a:
                out.append(a)
            elif i + 1 < len(args):
                out += [a, args[i + 1]]
                i += 1
        elif a == "--dry-run":
            out.append(a)
        i += 1
    return out


def _console_args(argv: list[str]) -> list[str]:
    """The console's own options from the command line, without --serve, --host, --port and the
    global options before the sub-command."""
    try:
        start = argv.index("console") + 1
    except ValueError:
        start = len(argv)
    out: list[str] = []
    skip = False
    for a in argv[start:]:
        if skip:
            skip = False
            continue
        if a == "--serve":
            continue
        if a in ("--host", "--port", "--data-dir"):
            skip = True
            continue
        if a.startswith(("--host=", "--port=", "--data-dir=")):
            continue
        out.append(a)
    return out
