"""Helpers shared by the timeline and PIR tests: drill a sample incident into a data directory
(receipts in its ledger), ingest its logs, traces and metrics, and normalise outputs for goldens."""
from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from analyzer.ingest import ingest_paths
from engine.datadir import DataDir
from engine.drill.sample import write_sample_set
from engine.drill.scenario import load_scenarios

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden"
SAMPLES = ("queue-traffic-surge", "breaker-dependency-outage", "latency-slow-queries", "errors-bad-deploy", "region-outage")
_BASE = Path(tempfile.mkdtemp(prefix="ggen-timeline-"))
atexit.register(shutil.rmtree, _BASE, True)


@dataclass(frozen=True)
class Case:
    """One drilled sample incident."""

    scenario: str
    root: Path
    data_dir: DataDir
    set_dir: Path
    manifest: dict[str, Any]

    @property
    def incident_id(self) -> str:
        return self.manifest["incidents"][0]["id"]

    @property
    def db(self) -> Path:
        return self.data_dir.analyzer_db_path

    def ledger(self) -> Any:
        from engine.receipts import KeyStore, Ledger

        return Ledger.open(self.data_dir.ledger_path, KeyStore.open(self.data_dir.keys_dir), readonly=True)

    def anchors(self) -> Any:
        from engine.receipts import KeyStore

        return KeyStore.open(self.data_dir.keys_dir).anchors()


@lru_cache(maxsize=None)
def drilled(scenario: str, seed: int = 1) -> Case:
    """Play ``scenario`` with receipts signed into a fresh data directory and ingest its set
    (once per test process)."""
    root = _BASE / f"{scenario}-{seed}"
    dd = DataDir(root / "data")
    manifest = write_sample_set(load_scenarios()[scenario], root / "set", seed=seed, data_dir=dd)
    s = root / "set"
    summary = ingest_paths([s / "logs", s / "metrics", s / "traces"], dd.analyzer_db_path)
    assert summary.rejects == 0, summary.to_dict()
    return Case(scenario, root, dd, s, manifest)


def normalize(text: str, case: Case) -> str:
    """Make an output comparable across runs: receipt and incident ids (random when a data
    directory signs them) become <id-1>, <id-2>... in order of appearance (8-hex prefixes too),
    and the temporary directories become placeholders."""
    text = text.replace(str(case.set_dir), "<set>").replace(str(case.root), "<root>")
    ids: dict[str, str] = {}
    for m in re.finditer(r"urn:uuid:([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})", text):
        ids.setdefault(m.group(1), f"id-{len(ids) + 1}")
    for full, name in ids.items():
        text = text.replace(full, f"<{name}>")
    for full, name in ids.items():
        text = re.sub(rf"\b{full[:8]}\b", f"<{name}>", text)
    return text


def check_golden(name: str, text: str) -> None:
    """Compare with tests/golden/NAME; GGEN_UPDATE_GOLDEN=1 rewrites the file instead."""
    path = GOLDEN / name
    if os.environ.get("GGEN_UPDATE_GOLDEN") == "1" or not path.exists() and os.environ.get("GGEN_UPDATE_GOLDEN") == "missing":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} is missing: run with GGEN_UPDATE_GOLDEN=1 to create it"
    want = path.read_text(encoding="utf-8")
    if text != want:
        import difflib

        diff = "".join(difflib.unified_diff(want.splitlines(True), text.splitlines(True), "golden", "now", n=1))
        raise AssertionError(f"{name} differs from the golden file (GGEN_UPDATE_GOLDEN=1 to accept):\n{diff[:6000]}")


def manifest_of(case: Case) -> dict[str, Any]:
    return json.loads((case.set_dir / "manifest.json").read_text())
