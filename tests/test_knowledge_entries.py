"""Knowledge-base entries: the packaged case files are complete, and broken files are reported by
file and field instead of crashing or being dropped silently."""
from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from analyzer.knowledge import CAUSES, INCIDENT_TYPES, PACKAGED_DIR, EntryError, EntryMeta, read_entry
from analyzer.knowledge.entry import REQUIRED_SECTIONS, parse_entry
from analyzer.knowledge.synthetic import synthetic_entry

FLEET_SERVICES = {"api", "app", "upstream", "governor", "action-handler", "database", "external-api"}


def packaged() -> list:
    return [read_entry(p) for p in sorted(PACKAGED_DIR.glob("incident-*.md"))]


def test_packaged_entries_cover_every_type_and_root_cause() -> None:
    entries = packaged()
    assert len(entries) >= 30
    types = {t for e in entries for t in e.meta.incident_types}
    causes = {c for e in entries for c in e.meta.causes}
    assert types == set(INCIDENT_TYPES)
    assert causes == set(CAUSES), f"root causes without an entry: {set(CAUSES) - causes}"
    # Every type has several case files, and compound incidents exist.
    for t in INCIDENT_TYPES:
        assert sum(t in e.meta.incident_types for e in entries) >= 5, t
    assert sum(len(e.meta.incident_types) >= 2 for e in entries) >= 8
    assert {e.meta.severity for e in entries} == {"Sev1", "Sev2", "Sev3", "Sev4"}


def test_packaged_entries_are_consistent() -> None:
    entries = packaged()
    ids = {e.entry_id for e in entries}
    assert len({e.meta.incident_id for e in entries}) == len(entries)
    for e in entries:
        m = e.meta
        assert date(2025, 1, 1) <= m.date <= date(2026, 12, 31), e.entry_id
        assert set(m.services) <= FLEET_SERVICES, (e.entry_id, m.services)
        assert set(m.regions) <= {"us-central1", "us-west1"}
        assert all(re.fullmatch(r"acct-\d{4}", a) for a in m.accounts)
        assert all(r in ids and r != e.entry_id for r in m.related_incidents), e.entry_id
        # What an on-call learns from: the ggen commands typed, and what failed or worked.
        text = "\n".join(e.sections.values())
        assert "ggen " in text or m.severity == "Sev4", f"{e.entry_id} shows no ggen command"
        assert m.mitigations, e.entry_id
        assert len(e.timeline_rows()) >= 3, e.entry_id
        assert "failed first" in e.section("Resolution").lower(), e.entry_id


def test_template_documents_every_field_and_section() -> None:
    text = (PACKAGED_DIR / "TEMPLATE.md").read_text()
    for name in EntryMeta.model_fields:
        assert re.search(rf"^{name}:", text, re.M), f"TEMPLATE.md does not document {name}"
    for section in REQUIRED_SECTIONS:
        assert f"## {section}" in text
    for cause in CAUSES:
        assert cause in text


def _valid(tmp_path: Path, **overrides) -> Path:
    name, text = synthetic_entry(1, **overrides)
    p = tmp_path / name
    p.write_text(text)
    return p


def _error(path: Path) -> EntryError:
    with pytest.raises(EntryError) as exc:
        read_entry(path)
    return exc.value


def test_generated_entry_round_trips(tmp_path: Path) -> None:
    e = read_entry(_valid(tmp_path))
    assert e.meta.severity in ("Sev1", "Sev2", "Sev3", "Sev4")
    assert set(e.sections) == set(REQUIRED_SECTIONS)
    assert e.prevention_items()["Short-term"][0][0] is True


@pytest.mark.parametrize(
    ("edit", "field", "message"),
    [
        (lambda t: t.replace("severity: Sev", "severity: Level", 1), "severity", "Sev1"),
        (lambda t: re.sub(r"incident_id: .*", "incident_id: abc-1234", t, count=1), "incident_id", "urn:uuid"),
        (lambda t: t.replace("## Timeline", "## Timelines"), "section Timelines", "unknown section"),
        (lambda t: t.replace("## Lessons Learned\n", "").replace("- Went well", "Went well"), None, None),
        (lambda t: re.sub(r"customers_affected: .*", "customers_affected: lots", t, count=1), "customers_affected", "N / Total"),
        (lambda t: re.sub(r"mttr_min: .*", "mttr_min: 100000", t, count=1), None, "mttr_min"),
        (lambda t: t.replace("---\n", "---\ncolour: red\n", 1), "colour", "Extra inputs"),
        (lambda t: re.sub(r"causes: \[", "causes: [gremlins, ", t, count=1), "causes.0", "traffic_surge"),
        (lambda t: re.sub(r"^title: .*$", "title: Just a title", t, count=1, flags=re.M), "title", "<Type> - <Root Cause>"),
        (lambda t: t.replace("### Long-term (within 3 months)", "### Later"), "section Prevention", "Long-term"),
    ],
)
def test_validation_errors_name_file_and_field(tmp_path: Path, edit, field, message) -> None:
    p = _valid(tmp_path)
    p.write_text(edit(p.read_text()))
    err = _error(p)
    assert err.path == str(p)
    assert str(p) in str(err)
    if field is not None:
        assert err.field == field, str(err)
    if message is not None:
        assert message in str(err)
    if field is None and message is None:
        assert err.field == "section Lessons Learned"


def test_structural_errors(tmp_path: Path) -> None:
    p = _valid(tmp_path)
    good = p.read_text()
    p.write_text(good.replace("---\n", "", 1))
    assert "no YAML front matter" in str(_error(p))
    p.write_text(good.replace("severity:", "severity: [unclosed", 1))
    err = _error(p)
    assert "invalid YAML front matter at line" in str(err)
    p.write_bytes(good.encode() + b"\xff\xfe")
    assert "not UTF-8" in str(_error(p))
    body = good.split("## Timeline", 1)
    p.write_text(body[0] + "## Timeline\n\nNo table here.\n\n## Resolution" + body[1].split("## Resolution", 1)[1])
    assert _error(p).field == "section Timeline"
    p.write_text(good)
    bad_name = p.with_name("incident-Bad_Name.md")
    p.rename(bad_name)
    assert "file name" in str(_error(bad_name))


def test_date_must_match_file_name(tmp_path: Path) -> None:
    p = _valid(tmp_path)
    text = re.sub(r"^date: .*$", "date: 2024-02-29", p.read_text(), count=1, flags=re.M)
    p.write_text(text)
    err = _error(p)
    assert err.field == "date" and "file name says" in err.message


def test_numeric_tags_are_accepted_as_text(tmp_path: Path) -> None:
    p = _valid(tmp_path)
    p.write_text(re.sub(r"^tags: .*$", "tags: [503, 429]", p.read_text(), count=1, flags=re.M))
    assert read_entry(p).meta.tags == ["503", "429"]


def test_parse_entry_without_name_check_accepts_any_path() -> None:
    name, text = synthetic_entry(3)
    e = parse_entry(Path("/nowhere/whatever.md"), text, check_name=False)
    assert e.entry_id == "whatever"
