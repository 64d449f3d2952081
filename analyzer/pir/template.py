"""The PIR template's ten sections (part 1, section 7): one definition that the drafter, the
linter, the knowledge base's PIR reader and the console's PIR screen all use."""
from __future__ import annotations

PIR_SECTIONS: tuple[str, ...] = (
    "1. Incident Summary",
    "2. Timeline of Events",
    "3. Root Cause Analysis (5 Whys)",
    "4. What Went Well",
    "5. What Went Wrong",
    "6. Action Items",
    "7. Metrics & Impact",
    "8. Follow-Up Items",
    "9. Lessons Learned",
    "10. Sign-Off",
)


def heading(number: int) -> str:
    """The Markdown heading of section ``number`` (1-10), e.g. ``## 6. Action Items``."""
    return "## " + PIR_SECTIONS[number - 1]
