"""`ggen fleet serve`: the simulated fleet as a real target system (Prometheus metrics, HTTP API)."""
from __future__ import annotations

import click

from console.cli.common import EXIT_FAILED, EXIT_USAGE, fail


@click.group()
def fleet() -> None:
    """The simulated fleet as a system to watch from outside."""


@fleet.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback unless you mean it).")
@click.option("--port", type=click.IntRange(0, 65535), default=9464, show_default=True, help="Port for /metrics and the API (0: any free port).")
@click.option("--seed", type=click.IntRange(min=0), default=1, show_default=True, help="Seed of the simulated fleet.")
@click.option("--scenario", metavar="NAME", default=None, help="Play a scenario's fault timeline (see `ggen drill --list`).")
@click.option("--speed", type=click.FloatRange(min=0.01, max=1000), default=1.0, show_default=True, help="Simulated seconds per real second.")
@click.option("--autoscale", is_flag=True, help="Run the fleet's own pre-incident queue auto-scaler (mitigation.toml [scaler]).")
@click.option("--policy-dir", type=click.Path(file_okay=False, exists=True), default=None, help="Runbooks directory with fleet.toml and mitigation.toml (default: the packaged one).")
def serve(host: str, port: int, seed: int, scenario: str | None, speed: float, autoscale: bool, policy_dir: str | None) -> None:
    """Run the simulated fleet on the wall clock and serve it: GET /metrics (Prometheus), GET
    /state, GET/POST /faults, DELETE /faults/ID, POST /actions (what a webhook or command actuator
    sends), GET /actions. Faults and actions change the fleet; nothing here detects or mitigates
    incidents: point `ggen watch --source prometheus` at a Prometheus scraping it. Ctrl+C stops."""
    import signal
    import threading
    from pathlib import Path

    from engine.policy.bundle import load_policy
    from engine.policy.loader import PolicyError
    from engine.sources.target import FleetServer, FleetTarget

    try:
        policy = load_policy(Path(policy_dir) if policy_dir else None)
        sc = None
        if scenario:
            from engine.drill.scenario import load_scenario

            try:
                sc = load_scenario(scenario)
            except KeyError as exc:
                fail(str(exc.args[0]) if exc.args else f"unknown scenario {scenario!r}", EXIT_USAGE)
        target = FleetTarget(policy, seed=seed, speed=speed, scenario=sc, autoscale=autoscale)
    except PolicyError as exc:
        fail(str(exc), EXIT_FAILED)
    server = FleetServer(target, host, port)
    try:
        server.start()
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", EXIT_FAILED)
    target.start()
    click.echo(f"ggen fleet serve: {server.url} (metrics at {server.url}/metrics, speed {speed:g}, seed {seed}" + (f", scenario {sc.name}" if sc else "") + "); Ctrl+C stops", err=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.is_set():
            stop.wait(0.5)
            if target.crash:
                break
    except KeyboardInterrupt:
        pass
    finally:
        target.stop()
        server.stop()
    if target.crash:
        fail(f"the fleet stopped: {target.crash}", EXIT_FAILED)
