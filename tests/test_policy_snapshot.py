"""The validated policy kept in the data directory (engine/policy/snapshot.py): restored only when
the files and the code are unchanged, never trusted when damaged, and read by the engine exactly
as the validated models are."""
from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import BaseModel

from engine.drill.runner import run_scenario
from engine.drill.scenario import load_scenario
from engine.policy.bundle import load_policy
from engine.policy.common import PolicyError
from engine.policy.snapshot import Record, read_snapshot, snapshot_key, write_snapshot
from runbooks import RUNBOOKS_DIR

ROOT = Path(__file__).resolve().parents[1]


def plain(x: object) -> object:
    """A model or a record as (class name, fields and property values), recursively."""
    if isinstance(x, BaseModel):
        fields = {k: plain(getattr(x, k)) for k in type(x).model_fields}
        for klass in type(x).__mro__:
            if klass is BaseModel:
                break
            for name, attr in vars(klass).items():
                if isinstance(attr, property):
                    fields[name] = plain(getattr(x, name))
        return (type(x).__name__, fields)
    if isinstance(x, Record):
        return (type(x).__name__, {k: plain(v) for k, v in x.__dict__.items()})
    if isinstance(x, list):
        return [plain(v) for v in x]
    if isinstance(x, tuple):
        return tuple(plain(v) for v in x)
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    return (type(x).__name__, x)  # 1 and 1.0 must not compare equal here


def parts(policy) -> dict:
    return {k: getattr(policy, k) for k in ("fleet", "mitigation", "severity", "escalation", "runbooks")}


def copy_runbooks(tmp_path: Path) -> Path:
    root = tmp_path / "runbooks"
    shutil.copytree(RUNBOOKS_DIR, root, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    return root


def test_second_load_restores_records_equal_to_the_validated_models(tmp_path: Path) -> None:
    snap = tmp_path / "policy-snapshot.pickle"
    validated = load_policy(snapshot=snap)
    assert snap.exists()
    assert isinstance(validated.runbooks["latency_spike"], BaseModel)  # the miss validated
    restored = load_policy(snapshot=snap)
    rb = restored.runbooks["latency_spike"]
    assert isinstance(rb, Record) and type(rb).__name__ == "Runbook"
    assert rb.id == validated.runbooks["latency_spike"].id  # properties come along
    assert plain(parts(restored)) == plain(parts(validated))
    assert restored.hashes == validated.hashes
    assert restored.policy_hashes("latency_spike") == validated.policy_hashes("latency_spike")
    tiers = restored.policy_hashes("queue_backlog_overflow")
    assert tiers["runbook"] == validated.hashes["incidents/queue_backlog_overflow.toml"]


def test_records_are_read_only(tmp_path: Path) -> None:
    snap = tmp_path / "s.pickle"
    load_policy(snapshot=snap)
    restored = load_policy(snapshot=snap)
    with pytest.raises(AttributeError, match="cannot be changed"):
        restored.fleet.fleet = None
    with pytest.raises(AttributeError):
        del restored.severity.levels
    assert restored.fleet == load_policy(snapshot=snap).fleet


@pytest.mark.parametrize("name", ["queue-traffic-surge", "region-outage", "errors-bad-deploy", "breaker-dependency-outage"])
def test_drills_run_the_same_on_a_restored_policy(tmp_path: Path, name: str) -> None:
    snap = tmp_path / "s.pickle"
    validated = load_policy(snapshot=snap)
    restored = load_policy(snapshot=snap)
    assert isinstance(restored.fleet, Record)
    sc = load_scenario(name)
    a, _ = run_scenario(sc, seed=3, policy=validated)
    b, _ = run_scenario(sc, seed=3, policy=restored)
    da, db = a.to_dict(), b.to_dict()
    da.pop("wall_s"), db.pop("wall_s")
    assert da == db
    assert a.passed, a.reasons


def test_a_changed_file_is_a_miss_and_its_new_value_is_used(tmp_path: Path) -> None:
    root = copy_runbooks(tmp_path)
    snap = tmp_path / "s.pickle"
    before = load_policy(root, snapshot=snap)
    path = root / "fleet.toml"
    text = path.read_text()
    assert "noise_pct" in text
    lines = [("noise_pct = 0.5" if ln.strip().startswith("noise_pct") else ln) for ln in text.splitlines()]
    path.write_text("\n".join(lines) + "\n")
    after = load_policy(root, snapshot=snap)
    assert isinstance(after.fleet, BaseModel)  # validated again, not restored
    assert after.fleet.fleet.noise_pct == 0.5 != before.fleet.fleet.noise_pct
    assert after.hashes["fleet.toml"] != before.hashes["fleet.toml"]
    again = load_policy(root, snapshot=snap)
    assert isinstance(again.fleet, Record) and again.fleet.fleet.noise_pct == 0.5


def test_a_broken_file_is_reported_even_with_a_snapshot_on_disk(tmp_path: Path) -> None:
    root = copy_runbooks(tmp_path)
    snap = tmp_path / "s.pickle"
    load_policy(root, snapshot=snap)
    path = root / "incidents" / "latency_spike.toml"
    path.write_text(path.read_text().replace("sustain_s = ", "sustain_s = \"soon\" # ", 1))
    with pytest.raises(PolicyError) as err:
        load_policy(root, snapshot=snap)
    assert err.value.path == str(path) and "sustain_s" in (err.value.field or "")
    (root / "severity.toml").unlink()
    with pytest.raises(PolicyError, match="severity.toml: file not found"):
        load_policy(root, snapshot=snap)


def test_the_key_covers_the_root_and_every_file(tmp_path: Path) -> None:
    hashes = {"a.toml": "1" * 64, "b.toml": "2" * 64}
    k = snapshot_key(tmp_path, hashes)
    assert k == snapshot_key(tmp_path, dict(reversed(hashes.items())))
    assert k != snapshot_key(tmp_path / "other", hashes)
    assert k != snapshot_key(tmp_path, {**hashes, "b.toml": "3" * 64})
    assert k != snapshot_key(tmp_path, {"a.toml": "1" * 64})


@pytest.mark.parametrize(
    "damage",
    [
        b"",
        b"not a pickle at all",
        pickle.dumps({"format": "ggen.policy-snapshot/1", "key": "x", "parts": {}})[:-3],
        pickle.dumps(["a list", "not a dict"]),
        pickle.dumps({"format": "something else", "key": None, "parts": {}}),
    ],
)
def test_a_damaged_snapshot_is_validated_again_and_replaced(tmp_path: Path, damage: bytes) -> None:
    snap = tmp_path / "s.pickle"
    snap.write_bytes(damage)
    pol = load_policy(snapshot=snap)
    assert isinstance(pol.fleet, BaseModel)
    assert snap.read_bytes() != damage
    assert isinstance(load_policy(snapshot=snap).fleet, Record)


def test_a_snapshot_naming_a_class_is_refused_not_loaded(tmp_path: Path) -> None:
    """Only builtins are restored: a pickle that would call something is treated as damage."""
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    validated = load_policy()
    key = snapshot_key(validated.root, validated.hashes)
    snap = tmp_path / "s.pickle"
    snap.write_bytes(pickle.dumps({"format": "ggen.policy-snapshot/1", "key": key, "parts": Evil()}))
    assert read_snapshot(snap, key) is None
    pol = load_policy(snapshot=snap)
    assert not marker.exists()
    assert isinstance(pol.fleet, BaseModel)


def test_an_unwritable_place_only_means_no_snapshot(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    snap = blocker / "s.pickle"  # its parent is a file: cannot be created
    assert write_snapshot(snap, "k", {"fleet": 1}) is False
    pol = load_policy(snapshot=snap)
    assert isinstance(pol.fleet, BaseModel) and not snap.exists()


def test_the_console_start_path_does_not_import_pydantic(tmp_path: Path) -> None:
    """What `ggen console` imports and runs before its first frame, on a data directory whose
    policy snapshot exists: pydantic (a hundred milliseconds of start-up) stays out."""
    code = textwrap.dedent(
        f"""
        import sys
        from console.cli import console as cmd  # noqa: F401
        from console.tui.app import ConsoleApp  # noqa: F401
        from console.tui.session import open_live_session
        from engine.datadir import DataDir

        s = open_live_session(DataDir.resolve({str(tmp_path / "data")!r}), defer_services=True)
        s.stop()
        print("pydantic" in sys.modules, type(s.live.engine.policy.fleet).__name__, type(s.live.engine.policy.fleet).__module__)
        """
    )
    runs = [subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120) for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
    assert runs[0].stdout.split() == ["True", "FleetSpec", "engine.policy.models"]  # the first start validates
    assert runs[1].stdout.split() == ["False", "FleetSpec", "engine.policy.snapshot"]
