"""Entry point of the ``ggen`` command. Sub-commands are loaded lazily, so ``ggen incidents list``
does not pay for importing Textual, DuckDB or tantivy."""
from __future__ import annotations

import importlib
import sys

import click

# command name -> "module:attribute". One line per command group; each group lives in its own module.
COMMANDS: dict[str, str] = {
    "console": "console.cli.console:console",
    "drill": "console.cli.drill:drill",
    "sample-logs": "console.cli.sample_logs:sample_logs",
    "incidents": "console.cli.incidents:incidents",
    "ingest": "console.cli.ingest:ingest",
    "keys": "console.cli.keys:keys",
    "knowledge": "console.cli.knowledge:knowledge",
    "oncall": "console.cli.oncall:oncall",
    "status-page": "console.cli.status_page:status_page",
    "fleet": "console.cli.fleet:fleet",
    # The live engine's control channel: headless engine, the runbooks' manual commands, chaos.
    "watch": "console.cli.watch:watch",
    "engine": "console.cli.enginectl:engine",
    "chaos": "console.cli.chaos:chaos",
    "metrics": "console.cli.metrics:metrics",
    "circuits": "console.cli.circuits:circuits",
    "circuit-breaker": "console.cli.circuit_breaker:circuit_breaker",
    "services": "console.cli.services:services",
    "governor": "console.cli.governor:governor",
    "replication": "console.cli.replication:replication",
    "logs": "console.cli.logs:logs",
    "feature-flags": "console.cli.feature_flags:feature_flags",
    "config": "console.cli.config:config",
    "api": "console.cli.api:api",
    "db": "console.cli.db:db",
    "rate-limit": "console.cli.rate_limit:rate_limit",
    "compression": "console.cli.compression:compression",
    "failback": "console.cli.failback:failback",
    "mitigation": "console.cli.mitigation:mitigation",
    # Training and certification.
    "train": "console.cli.train:train",
    "certify": "console.cli.certify:certify",
    # Investigation: reconstructed timelines and post-incident reviews.
    "timeline": "console.cli.timeline:timeline",
    "pir": "console.cli.pir:pir",
}

# Aliases the runbooks use. `ggen incident ...` is the same group as `ggen incidents ...`.
ALIASES: dict[str, str] = {
    "incident": "incidents",
}

HIDDEN: set[str] = set()


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(super().list_commands(ctx)))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        name = ALIASES.get(cmd_name, cmd_name)
        target = COMMANDS.get(name)
        if target is None:
            return super().get_command(ctx, name)
        module_name, attr = target.split(":")
        module = importlib.import_module(module_name)
        cmd = getattr(module, attr)
        if name in HIDDEN:
            cmd.hidden = True
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Listing help must not import every module: show names with their first docstring line.
        rows = []
        for name in self.list_commands(ctx):
            if name in HIDDEN:
                continue
            try:
                cmd = self.get_command(ctx, name)
            except Exception as exc:  # a broken module must not break `ggen --help`
                rows.append((name, f"(unavailable: {exc})"))
                continue
            if cmd is not None:
                rows.append((name, cmd.get_short_help_str(limit=70)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--data-dir",
    envvar="GGEN_DATA_DIR",
    type=click.Path(file_okay=False),
    default=None,
    help="Data directory (ledger, keys, databases). Default: $GGEN_DATA_DIR or ~/.local/share/ggen.",
)
@click.version_option(package_name="ggen", prog_name="ggen")
@click.pass_context
def cli(ctx: click.Context, data_dir: str | None) -> None:
    """ggen: a terminal-first incident console with signed receipts."""
    from engine.datadir import DataDir

    ctx.ensure_object(dict)
    ctx.obj["data_dir"] = DataDir.resolve(data_dir)


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="ggen", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:  # a group without its sub-command: its help
        click.echo(exc.format_message(), err=True)
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        # One line, like every other error of ggen: what is wrong, and where to read more.
        where = exc.ctx.command_path if exc.ctx is not None else "ggen"
        click.echo(f"{where}: {exc.format_message()} (see '{where} --help')", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"ggen: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("ggen: aborted", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
