"""Text from outside (logs, programs, servers, people) made safe to show on a terminal."""
from __future__ import annotations


def escape_controls(value: object) -> str:
    """Control and escape characters become visible escapes (``\\x1b``) instead of being
    interpreted by the terminal; newlines and tabs stay."""
    out = []
    for ch in str(value):
        o = ord(ch)
        if ch in "\n\t" or (o >= 32 and o != 127 and not (0x80 <= o < 0xA0)):
            out.append(ch)
        else:
            out.append(f"\\x{o:02x}" if o < 256 else f"\\u{o:04x}")
    return "".join(out)
