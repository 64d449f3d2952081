"""Where ggen keeps its state: one data directory shared by the console and every command.

Resolution order: an explicit path (``--data-dir``), the ``GGEN_DATA_DIR`` environment variable,
then ``$XDG_DATA_HOME/ggen`` (``~/.local/share/ggen``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "GGEN_DATA_DIR"


def default_data_dir() -> Path:
    """The data directory used when neither ``--data-dir`` nor ``GGEN_DATA_DIR`` is given."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "ggen"


def resolve_data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Pick the data directory (without creating it)."""
    if explicit:
        return Path(explicit).expanduser().resolve()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser().resolve()
    return default_data_dir()


@dataclass(frozen=True)
class DataDir:
    """Named locations inside one data directory. Creating them is explicit (``ensure``)."""

    root: Path

    @classmethod
    def resolve(cls, explicit: str | os.PathLike[str] | None = None) -> "DataDir":
        return cls(resolve_data_dir(explicit))

    def ensure(self) -> "DataDir":
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self

    @property
    def ledger_path(self) -> Path:
        return self.root / "ledger.sqlite"

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def analyzer_db_path(self) -> Path:
        return self.root / "analyzer.duckdb"

    @property
    def outbox_path(self) -> Path:
        return self.root / "outbox.jsonl"

    @property
    def control_socket_path(self) -> Path:
        return self.root / "engine.sock"

    @property
    def lock_path(self) -> Path:
        return self.root / "engine.lock"

    @property
    def knowledge_index_dir(self) -> Path:
        return self.root / "knowledge-index"

    @property
    def pir_dir(self) -> Path:
        return self.root / "pirs"

    @property
    def config_path(self) -> Path:
        return self.root / "config.toml"

    @property
    def roster_path(self) -> Path:
        return self.root / "roster.toml"

    @property
    def policy_snapshot_path(self) -> Path:
        return self.root / "policy-snapshot.pickle"
