"""Status page: drafts from receipts, publication (receipt + outbox), cadence, views, and the page
loaded in real headless Chromium with hostile text escaped."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from console.cli.main import cli
from engine.clock import parse_iso_ms
from engine.receipts import KeyStore, Ledger
from engine.statuspage import cadence, load_status_policy
from ops_support import ledger_with_incident

POLICY = load_status_policy()
HOSTILE = '<script>document.title="pwned"</script><img src=x onerror=alert(1)> & "quotes"'
CHROMIUM = "/usr/bin/chromium"


def run(env, *args):
    return CliRunner().invoke(cli, list(args), env=env)


@pytest.fixture
def published(tmp_path):
    """A Sev1 in the ledger with one public update published (title edited by a human, hostile)."""
    dd, eng, inc = ledger_with_incident(tmp_path / "dd")
    env = {"GGEN_DATA_DIR": str(dd.root)}
    r = run(env, "status-page", "draft", "--incident-id", inc.id, "--at", "2026-01-25T14:02:30Z", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    path = Path(d.pop("path"))
    # the draft is written from the receipts, with the fields section 10 requires, and no internal names
    assert d["status"] == "investigating" and d["severity"] == "Sev1" and d["number"] == 1
    assert d["components"] == ["Pub/Sub Message Delivery"] and d["banner"].startswith("🔴 MAJOR OUTAGE")
    assert d["started"] == "2026-01-25 14:01 UTC" and d["next_update"] == "2026-01-25 14:07 UTC"
    assert d["drafted_from"][0] == inc.id
    blob = json.dumps(d)
    for term in ("action-handler", "governor", "runbook", "ggen"):
        assert term not in blob
    d["title"] = HOSTILE
    path.write_text(json.dumps(d))
    r = run(env, "status-page", "publish", "--draft", str(path), "--by", "katja", "--at", "2026-01-25T14:03:00Z")
    assert r.exit_code == 0, r.output
    return dd, env, inc


def test_publication_is_recorded_as_receipt_outbox_and_page_entry(published):
    dd, env, inc = published
    keys = KeyStore.open_or_init(dd.keys_dir)
    with Ledger.open(dd.ledger_path, keys) as ledger:
        notes = [r.payload() for r in ledger.incident_receipts(inc.id) if r.kind == "incident.note"]
    assert notes[-1]["evidence"]["status_page"]["number"] == 1 and notes[-1]["actor"] == "person:katja"
    assert run(env, "incidents", "verify", "--incident-id", inc.id).exit_code == 0
    outbox = [json.loads(x) for x in dd.outbox_path.read_text().splitlines()]
    assert outbox[-1]["channel"] == "status" and outbox[-1]["kind"] == "update" and "(Update #1)" in outbox[-1]["text"]
    # publishing the same draft twice is refused
    draft = next((dd.root / "statuspage" / "drafts").glob("*.json"))
    r = run(env, "status-page", "publish", "--draft", str(draft))
    assert r.exit_code == 5 and "already published" in r.output


def test_publish_refuses_internal_names_and_missing_fields(published, tmp_path):
    dd, env, inc = published
    r = run(env, "status-page", "draft", "--incident-id", inc.id, "--at", "2026-01-25T14:07:00Z", "--json")
    d = json.loads(r.output)
    path = Path(d.pop("path"))
    assert d["number"] == 2
    d["impact"] = "governor cannot reach action-handler"
    path.write_text(json.dumps(d))
    r = run(env, "status-page", "publish", "--draft", str(path))
    assert r.exit_code == 5 and "internal things: governor, action-handler" in r.output
    del d["root_cause"]
    d["impact"] = "delays"
    path.write_text(json.dumps(d))
    r = run(env, "status-page", "publish", "--draft", str(path))
    assert r.exit_code == 1 and "field root_cause" in r.output and str(path) in r.output


def test_cadence_first_post_then_every_five_minutes_for_sev1(published):
    dd, env, inc = published
    # published at 14:03 (first post was due by 14:03:01, 2 min after detection): on time
    r = run(env, "status-page", "status", "--view", "internal", "--at", "2026-01-25T14:07:59Z", "--json")
    feed = json.loads(r.output)
    me = next(i for i in feed["incidents"] if i["incident_id"] == inc.id)
    assert me["cadence"]["due"] == "2026-01-25 14:08 UTC" and me["cadence"]["late"] is False
    r = run(env, "status-page", "status", "--view", "internal", "--at", "2026-01-25T14:09:00Z", "--json")
    assert r.exit_code == 1
    late = [w for w in json.loads(r.output)["warnings"] if inc.id in w]
    assert late and "late by 1 min" in late[0] and "every 5 min" in late[0]


def test_cadence_rules_by_severity():
    class S:
        incident_id, status, detected_at_ms, resolved_at_ms = "i", "open", 0, None

    from engine.statuspage.model import StatusUpdate

    def upd(at):
        return StatusUpdate(incident_id="i", number=1, audience="public", status="investigating", severity="Sev2", banner="b", title="t", components=["c"], impact="x",
                            started="s", duration="d", affected="a", root_cause="r", expected_resolution="e", next_update="n", drafted_at_ms=0, published_at_ms=at)

    c = cadence(S(), [], POLICY, 300, 119_000)
    assert not c.late and c.due_ms == 120_000
    assert cadence(S(), [], POLICY, 300, 121_000).late
    assert cadence(S(), [upd(200_000)], POLICY, 600, 799_000).due_ms == 800_000  # Sev2: every 10 min
    assert cadence(S(), [upd(200_000)], POLICY, 900, 801_000).late  # a 15-min cadence is capped at the 10-min gap
    assert cadence(S(), [upd(200_000)], POLICY, 0, 10**9).late is False  # Sev3: start and resolution only


def test_public_view_hides_internal_components_and_low_severities(published, tmp_path):
    dd, env, inc = published
    out = tmp_path / "pub"
    r = run(env, "status-page", "render", "--output", str(out), "--view", "public", "--at", "2026-01-25T14:05:00Z")
    assert r.exit_code == 0, r.output
    feed = json.loads((out / "feed.json").read_text())
    assert [c["name"] for c in feed["components"]] == ["API Endpoints", "Pub/Sub Message Delivery", "Dashboard/UI", "Mobile Apps"]
    assert {i["severity"] for i in feed["incidents"]} <= {"Sev1", "Sev2"}
    text = (out / "index.html").read_text()
    for term in ("action-handler", "governor", "Database", "runbook", "Circuit Breaker Opened detected"):
        assert term not in text
    assert "<script" not in text.lower() and "http://" not in text and "https://" not in text


@pytest.mark.system
def test_page_in_headless_chromium_shows_components_and_escapes_hostile_text(published, tmp_path):
    assert Path(CHROMIUM).exists() or shutil.which("chromium"), "chromium is required (Debian package chromium)"
    dd, env, inc = published
    out = tmp_path / "site"
    r = run(env, "status-page", "render", "--output", str(out), "--view", "internal", "--at", "2026-01-25T14:05:00Z")
    assert r.exit_code == 0, r.output
    page = (out / "index.html").as_uri()
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(flags + ["--dump-dom", page], capture_output=True, text=True, timeout=60).stdout
    assert 'id="components"' in dom
    for name in ("API Endpoints", "Pub/Sub Message Delivery", "Dashboard/UI", "Mobile Apps", "Database", "Cache", "Analytics pipeline", "Monitoring system"):
        assert f'data-component="{name}"' in dom
    assert 'data-component="Pub/Sub Message Delivery" data-state="major_outage"' in dom
    assert 'data-component="Database" data-state="operational"' in dom
    assert inc.id in dom and "Circuit Breaker Opened detected on governor-&gt;action-handler" in dom
    # the hostile title is text: escaped, never an element, and the script did not run
    assert "&lt;script&gt;document.title=\"pwned\"&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt; &amp; \"quotes\"" in dom
    assert "<script" not in dom.lower() and "<img" not in dom.lower()
    assert "<title>Service status (internal)</title>" in dom
    # the published incident is on time at 14:05; the others never got a first post and are flagged
    warnings = dom.split('id="warnings"')[1].split("</div>")[0]
    assert inc.id not in warnings and "status update late by" in warnings and "first post within 2 min" in warnings
    article = dom.split(f'data-incident="{inc.id}"')[1].split("</article>")[0]
    assert "next update due 2026-01-25 14:08 UTC" in article and "(LATE)" not in article
    shot = tmp_path / "status.png"
    subprocess.run(flags + ["--hide-scrollbars", "--window-size=1000,1400", f"--screenshot={shot}", page], capture_output=True, timeout=60)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
