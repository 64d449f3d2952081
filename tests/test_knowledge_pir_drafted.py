"""A PIR drafted by `ggen pir create` from a drilled incident's signed receipts, finished by the
review and turned into an entry: the entry keeps the PIR's MTTR (not detection-to-all-clear),
the mitigations that were applied, and symptoms from the PIR's summary and impact."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from analyzer.knowledge import read_entry, read_pir
from analyzer.knowledge.pir import parse_duration_s, pir_mitigations, pir_mttr_s
from console.cli.main import cli


def ggen(data: Path, *args: str) -> Result:
    r = CliRunner().invoke(cli, ["--data-dir", str(data), *args], catch_exceptions=False)
    assert r.exit_code == 0, (args, r.output)
    return r


def finish(draft: str) -> str:
    """What the review does before sign-off: status FINAL and the impact figure filled in."""
    text = re.sub(r"(?m)^status: DRAFT$", "status: FINAL", draft)
    text = re.sub(r"(?m)^Status: DRAFT$", "Status: FINAL", text)
    return re.sub(r"(?m)^\| Accounts Affected \|[^|]*\|", "| Accounts Affected | 37 / 1,240 (3.0%) |", text)


@pytest.fixture(scope="module")
def drilled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    root = tmp_path_factory.mktemp("drafted")
    data = root / "data"
    ggen(data, "sample-logs", "--scenario", "errors-bad-deploy", "--out", str(root / "set"))
    incident = json.loads(ggen(data, "incidents", "list", "--json").stdout)[0]
    draft = root / "pir-draft.md"
    ggen(data, "pir", "create", "--incident-id", incident["incident_id"], "--title", "Bad deploy on app", "--output", str(draft))
    final = root / "pir-final.md"
    final.write_text(finish(draft.read_text()))
    return data, final, incident


def test_entry_from_a_drafted_pir_keeps_its_mttr_mitigations_and_symptoms(drilled) -> None:
    data, final, incident = drilled
    assert incident["mttr_ms"] == 40_000  # the receipts' recovery.verified MTTR
    out = json.loads(ggen(data, "knowledge", "add", "--from-pir", str(final), "--json").stdout)
    e = read_entry(Path(out["path"]))
    m = e.meta
    assert m.mttr_s == 40 and m.mttr_min == 1, (m.mttr_s, m.mttr_min)
    assert m.duration_min == 6  # detection to all clear (recovery held for 300 s), not the MTTR
    assert [(x.pattern, x.outcome) for x in m.mitigations] == [("throttle", "worked"), ("rollback", "worked")]
    symptoms = e.section("Symptoms")
    assert "Error Rate Spike detected on app" in symptoms
    assert "37 / 1,240" in symptoms
    for noise in ("Previous incident", "PIR due", "TODO", "[knowledge ", "MITIGATION"):
        assert noise not in symptoms, noise
    assert "Recovered 40 s after detection" in e.section("Resolution")
    assert "TODO" not in e.section("Lessons Learned") + e.section("Contributing Factors")

    found = json.loads(ggen(data, "knowledge", "search", "--symptoms", "error rate spike on app after deploy", "--json").stdout)
    hit = next(h for h in found["hits"] if h["id"] == out["id"])
    assert (hit["mttr_s"], hit["mttr"]) == (40, "40 s")
    assert hit["snippet"]["field"] == "symptoms" and "Previous incident" not in hit["snippet"]["text"]
    human = ggen(data, "knowledge", "search", "--symptoms", "error rate spike on app after deploy")
    assert "MTTR 40 s" in human.stdout and "MTTR 6 min" not in human.stdout
    shown = ggen(data, "knowledge", "show", out["id"])
    assert "MTTR 40 s" in shown.stdout and "throttle: worked" in shown.stdout


def test_mttr_is_read_from_the_pir_not_from_its_duration(drilled) -> None:
    _, final, _ = drilled
    assert pir_mttr_s(read_pir(final)) == 40
    fixture = Path(__file__).parent / "data" / "knowledge_pir_final.md"
    assert pir_mttr_s(read_pir(fixture)) == 29 * 60  # "MTTR vs target | 29 min vs 3 min"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("40 s", 40), ("2 min 00 s", 120), ("29 min vs 3 min", 1740), ("1 h 5 min", 3900), ("90 seconds", 90), ("n/a", None), ("vs 2 min", None)],
)
def test_durations(text: str, seconds: int | None) -> None:
    assert parse_duration_s(text) == seconds


def test_mitigations_from_a_hand_written_pir() -> None:
    events = [
        ("09:13", "Auto-scale concurrency 20 -> 50"),
        ("09:17", "action_handler breaker OPEN after 5 consecutive errors"),
        ("09:27", "Config rollback of DB_POOL_MAX and rolling restart of action-handler"),
    ]
    well = ["The action_handler breaker opened on its own", "Config rollback of DB_POOL_MAX plus a rolling restart restored the pool"]
    wrong = ["Auto-scaling raised concurrency twice while the consumer was the bottleneck"]
    got = {m["pattern"]: m["outcome"] for m in pir_mitigations(events, well, wrong)}
    assert got == {"auto_scale": "failed", "circuit_breaker": "worked", "config_revert": "worked", "restart": "worked"}
