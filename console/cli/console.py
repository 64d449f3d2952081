"""`ggen console`: the live console, in the terminal or (with --serve) in a browser."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

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
@click.option("--serve", is_flag=True, help="Serve the console to a browser (textual-serve) instead of this terminal.")
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
    exits with code 3. With --serve, each browser that connects gets its own console process.
    """
    from engine.datadir import DataDir

    dd = DataDir.resolve(data_dir_opt) if data_dir_opt else data_dir()
    if scenario and replay:
        fail("give either --scenario or --replay, not both", EXIT_USAGE)
    if replay and record:
        fail("--record cannot be used with --replay (the replay is already a recording)", EXIT_USAGE)
    if replay and not Path(replay).is_file():
        fail(f"--replay: no such file: {replay}", EXIT_USAGE)
    if serve:
        _serve(dd, host, port)
        return

    from engine.live import DataDirLocked
    from engine.policy.loader import PolicyError
    from engine.sources import prepare_source
    from console.tui.session import ReplayError, open_live_session

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
            **setup.console_kwargs(),
        )
        setup.start_sources(session.live)
    except DataDirLocked as exc:
        fail(str(exc), EXIT_NO_ENGINE)
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
        ConsoleApp(session, freeze_startup_objects=True).run()
    finally:
        session.stop()
    if session.crash_text:
        last = session.crash_text.strip().splitlines()[-1] if session.crash_text.strip() else "unknown error"
        fail(f"the engine stopped: {last}", EXIT_FAILED)


def _serve(dd, host: str, port: int) -> None:
    """Serve `ggen console` (same options, minus --serve) to browsers with textual-serve."""
    from textual_serve.server import Server

    argv = [a for a in sys.argv[1:]]
    args = _console_args(argv)
    command = shlex.join([sys.executable, "-m", "console.cli.main", "--data-dir", str(dd.root), "console", *args])
    click.echo(f"serving the ggen console on http://{host}:{port} (data dir {dd.root}); Ctrl+C stops", err=True)
    Server(command, host=host, port=port, title="ggen console").serve()


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
