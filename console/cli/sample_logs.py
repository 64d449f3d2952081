"""`ggen sample-logs`: write a realistic incident data set (logs, traces, metrics) from a scenario."""
from __future__ import annotations

from pathlib import Path

import click

from console.cli.common import EXIT_USAGE, data_dir, echo_json, fail


@click.command("sample-logs")
@click.option("--scenario", "scenario_name", required=True, metavar="NAME", help="Scenario to play (see `ggen drill --list`).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Directory to write the set into.")
@click.option("--seed", type=click.IntRange(min=0), default=1, show_default=True)
@click.option("--receipts/--no-receipts", default=True, show_default=True, help="Also sign the run's receipts into the data directory's ledger.")
@click.option("--info-every", type=click.IntRange(min=1), default=5, show_default=True, help="Seconds between sampled INFO lines per service.")
@click.option("--max-errors-per-s", type=click.IntRange(min=0), default=3, show_default=True, help="Cap on error lines per service per second.")
@click.option("--gzip", "use_gzip", is_flag=True, help="Write every file gzip-compressed (.gz), as log shippers often do.")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
def sample_logs(scenario_name: str, out_dir: Path, seed: int, receipts: bool, info_every: int, max_errors_per_s: int, use_gzip: bool, as_json: bool) -> None:
    """Play a scenario on the virtual clock and write its logs (JSONL, GCP JSON, logfmt, log4j,
    syslog, access log), OTLP/JSON traces, metric series and a manifest into OUT."""
    from engine.drill.sample import write_sample_set
    from engine.drill.scenario import load_scenario
    from engine.policy.loader import PolicyError

    try:
        sc = load_scenario(scenario_name)
    except KeyError as exc:
        fail(str(exc.args[0]), EXIT_USAGE)
    except PolicyError as exc:
        fail(str(exc))
    if out_dir.exists() and any(out_dir.iterdir()):
        fail(f"--out {out_dir} is not empty; choose a new directory", EXIT_USAGE)
    manifest = write_sample_set(
        sc, out_dir, seed=seed, data_dir=data_dir() if receipts else None, info_every_s=info_every, max_errors_per_s=max_errors_per_s, gzip=use_gzip
    )
    if as_json:
        echo_json(manifest)
        return
    click.echo(f"{sc.name} (seed {seed}): {manifest['window']['from']} .. {manifest['window']['to']}")
    for f in manifest["faults"]:
        click.echo(f"  fault {f['kind']} on {f['target']} at {f['injected_at']} (root cause: {f['root_cause_service']})")
    for i in manifest["incidents"]:
        click.echo(f"  incident {i['id']} {i['type']} {i['severity']} detected {i['detected_at']} recovered {i['recovered_at']}")
    for name, info in manifest["files"].items():
        click.echo(f"  {out_dir / name}: {info['lines']} lines")
    if manifest["receipts_in"]:
        click.echo(f"  receipts signed into {manifest['receipts_in']}")
