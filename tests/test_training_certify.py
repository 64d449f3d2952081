"""The certification path through the CLI, ending in a certificate that verifies; and the train and
certify commands' contracts (answers files, history, errors)."""
import json
import subprocess
import sys

import orjson
import pytest
from click.testing import CliRunner

from console.cli.main import cli
from engine.drill.scenario import load_scenarios
from engine.training.certify import required_scenarios
from engine.training.quiz import load_bank

SCENARIOS = load_scenarios()
REQUIRED = required_scenarios(SCENARIOS)


def ggen(data, *args, input=None):
    return CliRunner().invoke(cli, ["--data-dir", str(data), *args], input=input, catch_exceptions=False)


def ggen_proc(data, *args):
    return subprocess.run([sys.executable, "-m", "console.cli.main", "--data-dir", str(data), *args], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def reference_file(tmp_path, name):
    r = ggen(tmp_path / "data", "train", "show", name, "--reference")
    assert r.exit_code == 0, r.output
    p = tmp_path / f"{name}.toml"
    p.write_text(r.output)
    return p


def quiz_answers(tmp_path, *, wrong=0, seed=5):
    from engine.training.quiz import draw

    qs = draw(load_bank(), seed, 25)
    answers = {q.id: q.answer for q in qs}
    for q in qs[:wrong]:
        answers[q.id] = next(c for c in q.choices if c != q.answer)
    p = tmp_path / f"quiz-{wrong}.json"
    p.write_text(json.dumps({"seed": seed, "answers": answers}))
    return p


def test_whole_certification_path_ends_in_a_verified_certificate(tmp_path):
    data = tmp_path / "data"
    r = ggen(data, "certify", "--trainee", "alice")
    assert r.exit_code == 1
    assert "not eligible for a certificate yet: missing 14 item(s)" in r.output
    for name in REQUIRED:
        r = ggen(data, "train", "run", name, "--answers", str(reference_file(tmp_path, name)), "--trainee", "alice")
        assert r.exit_code == 0, r.output
        assert f"PASS {name}" in r.output
    # headless runs are practice: they count only when the issuer says so
    r = ggen(data, "certify", "status", "--trainee", "alice", "--json")
    status = orjson.loads(r.output)
    assert len(status["missing"]) == len(REQUIRED) + 1 and status["practice_results_not_counted"] == len(REQUIRED)
    r = ggen(data, "certify", "status", "--trainee", "alice", "--accept-scripted", "--json")
    status = orjson.loads(r.output)
    assert status["missing"] == ["the knowledge assessment (ggen certify quiz)"]
    r = ggen(data, "certify", "quiz", "--trainee", "alice", "--answers", str(quiz_answers(tmp_path, wrong=6)))
    assert r.exit_code == 1 and "FAIL 19/25 correct: 76 % (pass mark 80 %, seed 5)" in r.output
    r = ggen(data, "certify", "--trainee", "alice", "--accept-scripted")
    assert r.exit_code == 1 and "missing 1 item(s)" in r.output and "last attempt 76.0 %" in r.output
    r = ggen(data, "certify", "quiz", "--trainee", "alice", "--answers", str(quiz_answers(tmp_path, wrong=0)))
    assert r.exit_code == 0 and "PASS 25/25 correct: 100 %" in r.output
    r = ggen(data, "certify", "--trainee", "alice")
    assert r.exit_code == 1 and f"missing {len(REQUIRED) + 1} item(s)" in r.output and "practice and do not count" in r.output
    r = ggen(data, "certify", "--trainee", "alice", "--actor", "trainer-tom", "--accept-scripted", "--json")
    assert r.exit_code == 0, r.output
    rec = orjson.loads(r.output)
    rid = rec["receipt_id"]
    p = ggen_proc(data, "incidents", "verify", "--receipt-id", rid)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"verified receipt {rid}" in p.stdout
    # the receipt says what was certified, signed
    from engine.receipts import Ledger

    led = Ledger.open(data / "ledger.sqlite", readonly=True)
    try:
        (cert,) = [x.payload() for x in led.iter_receipts() if x.kind == "certificate.issued"]
    finally:
        led.close()
    ev = cert["evidence"]
    assert ev["trainee"] == "alice" and cert["actor"] == "person:trainer-tom"
    assert [s["scenario"] for s in ev["scenarios"]] == REQUIRED
    assert all(s["score_bp"] == 10000 for s in ev["scenarios"])
    assert ev["quiz"]["score_bp"] == 10000 and ev["quiz"]["pass_bp"] == 8000 and ev["quiz"]["seed"] == 5
    assert ev["accepted_scripted"] is True and ev["scripted_results"] == len(REQUIRED) + 1 and ev["reissue_of"] is None
    assert {s["mode"] for s in ev["scenarios"]} == {"headless"} and ev["quiz"]["mode"] == "scripted"
    # history: every result, then the certificate; training runs put no incident into the ledger
    r = ggen(data, "train", "history", "--trainee", "alice", "--json")
    hist = orjson.loads(r.output)
    assert [h["kind"] for h in hist].count("scenario") == len(REQUIRED)
    assert hist[-1]["kind"] == "certificate" and hist[-1]["receipt_id"] == rid
    r = ggen(data, "incidents", "list", "--since", "24h")
    assert "no incidents" in r.output


def test_a_failed_scenario_is_listed_and_blocks_the_certificate(tmp_path):
    data = tmp_path / "data"
    ans = tmp_path / "late.toml"
    ans.write_text(reference_file(tmp_path, "errors-bad-deploy").read_text().replace("after_page_s = 20 }", "after_page_s = 1000 }"))
    r = ggen(data, "train", "run", "errors-bad-deploy", "--answers", str(ans), "--trainee", "bob")
    assert r.exit_code == 1
    assert "FAIL errors-bad-deploy" in r.output and "late acknowledgement: 1000 s after the page, the Sev2 SLA is 900 s" in r.output
    assert "reference path:" in r.output and "20 s after the page: acknowledge" in r.output
    r = ggen(data, "certify", "status", "--trainee", "bob")
    assert "✗ scenario errors-bad-deploy" in r.output
    r = ggen(data, "train", "history", "--trainee", "bob")
    assert "scenario errors-bad-deploy: FAIL" in r.output and "late acknowledgement" in r.output


def test_run_json_and_no_record(tmp_path):
    data = tmp_path / "data"
    r = ggen(data, "train", "run", "errors-bad-config", "--answers", str(reference_file(tmp_path, "errors-bad-config")), "--json", "--no-record", "--trainee", "cy")
    assert r.exit_code == 0
    out = orjson.loads(r.output)
    assert out["passed"] and out["score_pct"] == 100.0 and out["result_id"] is None
    assert {c["key"] for c in out["criteria"]} == {"acknowledge", "severity", "runbook", "mttr", "escalation", "actions", "safety"}
    assert not (data / "training" / "history.jsonl").exists()


@pytest.mark.parametrize(
    "text,needle",
    [
        ("steps = [", "invalid TOML"),
        ("steps = []", "field steps: List should have at least 1 item"),
        ('steps = [{ do = "dance", at_s = 1 }]', "field steps.0.do"),
        ('steps = [{ do = "classify", at_s = 1 }]', "needs severity"),
        ('scenario = "errors-bad-deploy"\nsteps = [{ do = "acknowledge", at_s = 1 }]', "the file is for 'errors-bad-deploy', not 'errors-bad-config'"),
        ('colour = "red"\nsteps = [{ do = "acknowledge", at_s = 1 }]', "field colour: Extra inputs are not permitted"),
    ],
)
def test_bad_answers_files_are_one_line_errors(tmp_path, text, needle):
    p = tmp_path / "a.toml"
    p.write_text(text)
    r = ggen(tmp_path / "data", "train", "run", "errors-bad-config", "--answers", str(p))
    assert r.exit_code == 2
    assert needle in r.output and str(p) in r.output


def test_cli_usage_errors(tmp_path):
    data = tmp_path / "data"
    r = ggen(data, "train", "run", "no-such", "--answers", "x.toml")
    assert r.exit_code == 2 and "unknown training scenario 'no-such'" in r.output
    r = ggen(data, "train", "run", "region-flap-no-failover", "--answers", "x.toml")
    assert r.exit_code == 2  # a drill without a [training] table
    r = ggen(data, "train", "history", "--trainee", "\x1b[31mevil")
    assert r.exit_code == 2 and "control character (0x1b)" in r.output
    r = ggen(data, "certify")
    assert r.exit_code == 2 and "give --trainee NAME" in r.output


def test_hostile_text_in_answers_is_escaped(tmp_path):
    p = reference_file(tmp_path, "errors-bad-config")
    p.write_text(p.read_text().replace("]", '    { do = "note", after_page_s = 50, text = "\\u001b[2J wipe" },\n]'))
    r = ggen(tmp_path / "data", "train", "run", "errors-bad-config", "--answers", str(p), "--trainee", "dee")
    assert r.exit_code == 0
    assert "\x1b" not in r.output


def test_damaged_history_line_is_reported_and_skipped(tmp_path):
    data = tmp_path / "data"
    ggen(data, "train", "run", "errors-bad-config", "--answers", str(reference_file(tmp_path, "errors-bad-config")), "--trainee", "eve")
    h = data / "training" / "history.jsonl"
    h.write_bytes(h.read_bytes() + b'{"kind": "scenario", "trainee": "eve", "at_m\n')
    ggen(data, "train", "run", "errors-bad-config", "--answers", str(reference_file(tmp_path, "errors-bad-config")), "--trainee", "eve")
    r = CliRunner().invoke(cli, ["--data-dir", str(data), "train", "history", "--trainee", "eve", "--json"])
    assert len(orjson.loads(r.stdout)) == 2
    assert "history.jsonl:2: not JSON" in r.stderr


def test_result_of_an_edited_scenario_does_not_count(tmp_path):
    from engine.training.certify import eligibility
    from engine.training.config import load_training_config
    from engine.training.history import TrainingHistory

    h = TrainingHistory(tmp_path)
    h.append({"kind": "scenario", "trainee": "fay", "scenario": "errors-bad-deploy", "passed": True, "score_pct": 100.0, "scenario_sha256": "0" * 64}, now_ms=1_000_000)
    el = eligibility(h, "fay", SCENARIOS, load_training_config(), now_ms=1_000_000)
    assert "errors-bad-deploy" not in el.passed and "errors-bad-deploy" in el.attempted
    # and results older than results_valid_days expire
    from engine.training.certify import scenario_sha256

    h.append({"kind": "scenario", "trainee": "fay", "scenario": "errors-bad-deploy", "passed": True, "score_pct": 100.0, "scenario_sha256": scenario_sha256("errors-bad-deploy"), "mode": "console"}, now_ms=1_000_000)
    assert "errors-bad-deploy" in eligibility(h, "fay", SCENARIOS, load_training_config(), now_ms=1_000_000).passed
    later = 1_000_000 + 181 * 86_400_000
    assert "errors-bad-deploy" not in eligibility(h, "fay", SCENARIOS, load_training_config(), now_ms=later).passed


def test_quiz_needs_a_terminal_or_an_answers_file(tmp_path):
    p = ggen_proc(tmp_path / "data", "certify", "quiz", "--trainee", "gus")
    assert p.returncode == 2
    assert "give --answers FILE" in p.stderr


def test_quiz_interactive_on_a_terminal(tmp_path, monkeypatch):
    from engine.training.quiz import LETTERS, draw

    qs = draw(load_bank(), 9, 5)
    monkeypatch.setattr("console.cli.certify._stdin_is_terminal", lambda: True)
    typed = "\n".join(LETTERS[q.answer_index] for q in qs[:4]) + "\n" + LETTERS[(qs[4].answer_index + 1) % len(qs[4].choices)] + "\n"
    r = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "data"), "certify", "quiz", "--trainee", "hal", "--seed", "9", "--count", "5"], input=typed)
    assert r.exit_code == 0, r.output  # 4/5 = 80 %: the pass mark
    assert "PASS 4/5 correct: 80 %" in r.output
    assert qs[4].explain in r.output


def test_quiz_answers_file_errors(tmp_path):
    p = tmp_path / "q.toml"
    p.write_text('[answers]\nno-such-question = "A"\n')
    r = ggen(tmp_path / "data", "certify", "quiz", "--answers", str(p))
    assert r.exit_code == 2 and "answers.no-such-question: no such question" in r.output


def test_readme_answers_example_is_a_passing_answers_file(tmp_path):
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("An answers file is the trainee's actions")[1].split("```toml\n")[1].split("```")[0]
    p = tmp_path / "readme.toml"
    p.write_text(block)
    r = ggen(tmp_path / "data", "train", "run", "queue-slow-consumer", "--answers", str(p), "--json")
    out = orjson.loads(r.output)
    assert r.exit_code == 0 and out["trainee"] == "ana" and out["passed"], out["failures"]


def played_history(h, who, now_ms, *, mode="console", quiz_mode="terminal"):
    from engine.training.certify import scenario_sha256

    for name in REQUIRED:
        h.append({"kind": "scenario", "trainee": who, "scenario": name, "passed": True, "score_pct": 100.0, "scenario_sha256": scenario_sha256(name), "mode": mode}, now_ms=now_ms)
    h.append({"kind": "quiz", "trainee": who, "passed": True, "score_pct": 100.0, "pass_pct": 80, "total": 25, "seed": 1, "mode": quiz_mode}, now_ms=now_ms)


def test_only_results_a_person_played_count_unless_scripted_is_accepted(tmp_path):
    from engine.training.certify import eligibility
    from engine.training.config import load_training_config
    from engine.training.history import TrainingHistory

    cfg = load_training_config()
    h = TrainingHistory(tmp_path / "a")
    played_history(h, "gil", 1_000_000, mode="headless", quiz_mode="scripted")
    el = eligibility(h, "gil", SCENARIOS, cfg, now_ms=1_000_000)
    assert not el.eligible and el.practice == len(REQUIRED) + 1
    assert eligibility(h, "gil", SCENARIOS, cfg, now_ms=1_000_000, accept_scripted=True).eligible
    h2 = TrainingHistory(tmp_path / "b")
    played_history(h2, "gil", 1_000_000)
    assert eligibility(h2, "gil", SCENARIOS, cfg, now_ms=1_000_000).eligible


def test_a_certified_trainee_is_told_so_and_reissue_names_the_old_certificate(tmp_path):
    from engine.clock import WallClock
    from engine.receipts import Ledger
    from engine.training.history import TrainingHistory

    data = tmp_path / "data"
    played_history(TrainingHistory(data), "ivy", WallClock().now_ms())
    r = ggen(data, "certify", "--trainee", "ivy", "--json")
    assert r.exit_code == 0, r.output
    first = orjson.loads(r.output)["receipt_id"]
    r = ggen(data, "certify", "--trainee", "ivy")
    assert r.exit_code == 0 and "already certified" in r.output and first in r.output
    r = ggen(data, "certify", "--trainee", "ivy", "--json")
    assert orjson.loads(r.output)["already_certified"] is True

    def certs():
        led = Ledger.open(data / "ledger.sqlite", readonly=True)
        try:
            return [x.payload() for x in led.iter_receipts() if x.kind == "certificate.issued"]
        finally:
            led.close()

    assert len(certs()) == 1
    r = ggen(data, "certify", "--trainee", "ivy", "--reissue")
    assert r.exit_code == 0 and f"replacing {first}" in r.output
    got = certs()
    assert len(got) == 2 and got[1]["evidence"]["reissue_of"] == first and got[1]["evidence"]["accepted_scripted"] is False
