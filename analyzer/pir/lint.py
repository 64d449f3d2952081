"""Lint a PIR for the template's anti-patterns (part 1 section 7): blaming a person, fewer than
five whys, no positives, vague actions, actions without owner or date, claims without data, and
placeholders left for the review. Each finding is ``file:line: rule: message``."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from analyzer.pir.settings import PirSettings, load_pir_settings
from analyzer.pir.template import PIR_SECTIONS

SECTIONS = PIR_SECTIONS
RULES = ("structure", "blame", "whys", "no-positives", "vague-action", "action-owner-date", "claim-without-data", "placeholder")

_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+(?:\[(?P<box>[ xX])\]\s+)?(?P<text>.*\S)\s*$")
_ROW = re.compile(r"^\s*\|(?P<cells>.*)\|\s*$")
_SEP = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_ANSWER = re.compile(r"\bA(?P<n>[1-9])\s*[:.)]\s*(?P<text>.*)$")
_QUESTION1 = re.compile(r"\bQ1\s*[:.)]")
_TIME = re.compile(r"^\s*(?:[-*]\s+)?\**\d{1,2}:\d{2}")
_BRACKET = re.compile(r"\[([^\[\]]+)\]")
_LINK = re.compile(r"\]\((?:https?://|\.{0,2}/)[^)]+\)")
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_FIELDS = re.compile(r"\b(Owner|Effort|Due|Status)\s*:[^.;|]*[.;]?", re.I)
_OWNER = re.compile(r"\bOwner\s*:\s*(?P<who>[^.;|\[]*)", re.I)
_CITE_PART = re.compile(
    r"^(receipt\s+(urn:uuid:)?[0-9a-f-]{8,}|urn:uuid:[0-9a-f-]{8,}|span\s+[0-9a-f]{8,}.*|knowledge\s+\S+|runbooks/\S+|[\w./@-]+:\d+(-\d+)?)$",
    re.I,
)


@dataclass(frozen=True)
class LintFinding:
    """One anti-pattern at one line."""

    file: str
    line: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.rule}: {self.message}"

    def to_dict(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "rule": self.rule, "message": self.message}


def has_citation(line: str) -> bool:
    """True when the line cites a receipt, a source line, a span, a knowledge entry or a link."""
    if _LINK.search(line):
        return True
    for m in _BRACKET.finditer(line):
        parts = [p.strip() for p in m.group(1).split(";")]
        if parts and all(_CITE_PART.match(p) for p in parts if p):
            return True
    return False


def _strip_citations(line: str) -> str:
    return _BRACKET.sub(lambda m: "" if has_citation(m.group(0)) else m.group(0), line)


def _canonical(title: str) -> str | None:
    t = re.sub(r"\s+", " ", title.strip()).lower()
    return next((s for s in SECTIONS if s.lower() == t), None)


def lint_text(text: str, name: str = "<text>", settings: PirSettings | None = None) -> list[LintFinding]:
    """Findings for a PIR's Markdown, in line order."""
    st = (settings or load_pir_settings()).lint
    flags = re.I
    blame = [re.compile(p, flags) for p in st.blame]
    vague = [re.compile(p, flags) for p in st.vague]
    measurable = re.compile(st.measurable, flags)
    unquantified = [re.compile(p, flags) for p in st.unquantified]
    placeholder = [re.compile(p, flags) for p in st.placeholder]
    out: list[LintFinding] = []

    def add(line: int, rule: str, message: str) -> None:
        out.append(LintFinding(name, line, rule, message))

    lines = text.split("\n")
    first = 0
    if lines and lines[0].strip() == "---":
        end = next((i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")), None)
        if end is None:
            add(1, "structure", "front matter is not closed (no second '---' line)")
            return out
        try:
            meta = yaml.safe_load("\n".join(lines[1:end])) or {}
        except yaml.YAMLError as exc:
            add(1, "structure", f"invalid YAML front matter: {str(exc).splitlines()[0]}")
            meta = {}
        if isinstance(meta, dict) and meta.get("status") not in (None, "DRAFT", "FINAL", "APPROVED"):
            add(1, "structure", f"status {meta.get('status')!r} is not DRAFT, FINAL or APPROVED")
        first = end + 1

    # Sections (outside code fences) and the lines that belong to each.
    section_at: dict[str, int] = {}
    body: dict[str, list[tuple[int, str]]] = {}
    current: str | None = None
    fenced = False
    for i in range(first, len(lines)):
        raw = lines[i]
        if raw.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            continue
        m = re.match(r"^##\s+(.+?)\s*$", raw)
        if m and not raw.startswith("###"):
            current = _canonical(m.group(1))
            if current is not None:
                section_at[current] = i + 1
                body[current] = []
            continue
        if current is not None:
            body[current].append((i + 1, raw))
        # Blame and placeholders anywhere in the document body.
        for rx in blame:
            hit = rx.search(raw)
            if hit:
                add(i + 1, "blame", f"'{hit.group(0)}' puts the cause on a person; describe the condition that allowed it")
                break
        for rx in placeholder:
            hit = rx.search(raw)
            if hit:
                add(i + 1, "placeholder", f"'{hit.group(0)}' is left for the review to complete")
                break
    for s in SECTIONS:
        if s not in section_at:
            add(1, "structure", f"missing section '## {s}'")

    # Five whys: every chain needs five answered whys.
    if "3. Root Cause Analysis (5 Whys)" in body:
        chains: list[tuple[int, dict[int, str]]] = []
        for n, raw in body["3. Root Cause Analysis (5 Whys)"]:
            if _QUESTION1.search(raw) or (re.search(r"\bA1\s*[:.)]", raw) and (not chains or 1 in chains[-1][1])):
                chains.append((n, {}))
            a = _ANSWER.search(raw)
            if a:
                if not chains:
                    chains.append((n, {}))
                text_a = a.group("text").strip()
                done = bool(text_a) and not any(rx.search(text_a) for rx in placeholder)
                if done:
                    chains[-1][1][int(a.group("n"))] = text_a
        if not chains:
            add(section_at["3. Root Cause Analysis (5 Whys)"], "whys", "no 5-whys chain (Q1/A1 ... Q5/A5)")
        for k, (n, answers) in enumerate(chains, start=1):
            got = len({x for x in answers if 1 <= x <= 9})
            if got < 5:
                missing = [f"A{x}" for x in range(1, 6) if x not in answers]
                add(n, "whys", f"chain {k} has {got} answered why(s), fewer than five (missing or unanswered: {', '.join(missing)})")

    # Positives.
    if "4. What Went Well" in body:
        good = [t for _, t in body["4. What Went Well"] if (m := _ITEM.match(t)) and m.group("box") != " " and not any(rx.search(m.group("text")) for rx in placeholder)]
        if not good:
            add(section_at["4. What Went Well"], "no-positives", "'What Went Well' lists nothing; every review names what worked")

    # Action items: measurable, owned, dated.
    if "6. Action Items" in body:
        for n, raw in body["6. Action Items"]:
            m = _ITEM.match(raw)
            if not m:
                continue
            item = m.group("text")
            if re.match(r"^none\b", item, re.I):
                continue
            plain = _strip_citations(item)
            # What the item says it will do, without its bookkeeping fields (a due date is not a measure).
            plain = _FIELDS.sub("", plain)
            hit = next((h for rx in vague if (h := rx.search(plain))), None)
            if hit is not None and not measurable.search(plain):
                add(n, "vague-action", f"'{hit.group(0)}' with nothing measurable; say what changes, to which value, checked how")
            who = _OWNER.search(item)
            if who is None or not who.group("who").strip() or any(rx.search(who.group("who")) for rx in placeholder):
                add(n, "action-owner-date", "action item has no owner (Owner: <team or person>)")
            if not _DATE.search(item):
                add(n, "action-owner-date", "action item has no due date (Due: YYYY-MM-DD)")
    if "8. Follow-Up Items" in body:
        header: list[str] | None = None
        for n, raw in body["8. Follow-Up Items"]:
            r = _ROW.match(raw)
            if not r or _SEP.match(raw):
                continue
            cells = [c.strip() for c in r.group("cells").split("|")]
            if header is None:
                header = [c.lower() for c in cells]
                continue
            row = dict(zip(header, cells))
            if not row.get("owner"):
                add(n, "action-owner-date", f"follow-up '{cells[0][:60]}' has no owner")
            if not _DATE.search(row.get("due date", "") or row.get("due", "")):
                add(n, "action-owner-date", f"follow-up '{cells[0][:60]}' has no due date")

    # Claims without data: figures and sweeping words need a citation.
    factual = ("1. Incident Summary", "2. Timeline of Events", "4. What Went Well", "5. What Went Wrong", "7. Metrics & Impact", "9. Lessons Learned")
    for sec in factual:
        header_seen = False
        for n, raw in body.get(sec, []):
            r = _ROW.match(raw)
            if r:
                if _SEP.match(raw):
                    continue
                if not header_seen:
                    header_seen = True
                    continue
            elif sec == "2. Timeline of Events":
                if not _TIME.match(raw):
                    continue
            elif not _ITEM.match(raw) and not (sec == "1. Incident Summary" and raw.strip() and not raw.lstrip().startswith(("#", ">"))):
                continue
            m = _ITEM.match(raw)
            if m and m.group("box") == " ":
                continue
            if any(rx.search(raw) for rx in placeholder):
                continue
            plain = _strip_citations(raw)
            plain_nodate = re.sub(r"\b\d{1,2}:\d{2}(:\d{2})?\b|\b\d{4}-\d{2}-\d{2}\b|\bSev\d\b|\bQ\d\b|\bA\d\b|\b\d+\.\s", "", plain)
            if sec == "1. Incident Summary" and re.search(r"\*\*(Incident ID|Severity)", raw):
                plain_nodate = re.sub(r"urn:uuid:[0-9a-f-]+", "", plain_nodate)
            sweeping = next((h for rx in unquantified if (h := rx.search(plain))), None)
            if sweeping is not None and not re.search(r"\d", plain_nodate):
                add(n, "claim-without-data", f"'{sweeping.group(0)}' without a figure; give the number and its source")
                continue
            if re.search(r"\d", plain_nodate) and not has_citation(raw):
                add(n, "claim-without-data", "a figure with no source; cite a receipt [receipt <id>] or a line [file:line]")
    if "3. Root Cause Analysis (5 Whys)" in body:
        for n, raw in body["3. Root Cause Analysis (5 Whys)"]:
            a = _ANSWER.search(raw)
            if a and a.group("n") in "12" and a.group("text").strip() and not any(rx.search(raw) for rx in placeholder) and not has_citation(raw):
                add(n, "claim-without-data", f"why {a.group('n')} is answered without evidence; cite the receipt or line it rests on")
    out.sort(key=lambda f: (f.line, RULES.index(f.rule) if f.rule in RULES else 99))
    return out


def lint_pir(path: Path, settings: PirSettings | None = None) -> list[LintFinding]:
    """Lint a PIR file. Raises OSError / UnicodeDecodeError for a file that cannot be read."""
    text = Path(path).read_text(encoding="utf-8")
    return lint_text(text, str(path), settings)
