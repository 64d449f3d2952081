"""C2SP signed notes and tlog checkpoints.

A note is UTF-8 text ending in a newline, a blank line, then signature lines
``— <key name> <base64(4-byte key hash || Ed25519 signature)>``. The key hash (our key id) is
``SHA-256(name || 0x0A || 0x01 || public key)[:4]``. A checkpoint is a note whose text is the
origin line, the tree size in decimal, and the base64 root hash.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Callable

SIG_PREFIX = "\u2014 "  # em dash, space
ED25519_TYPE = b"\x01"
MAX_NOTE_BYTES = 1 << 16
MAX_SIGNATURES = 100
_NAME_RE = re.compile(r"^[^\s+]+$")
_DECIMAL_RE = re.compile(r"^(0|[1-9][0-9]{0,18})$")


class NoteError(ValueError):
    """A signed note or checkpoint that is malformed, with the reason."""


def note_key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte key hash that names an Ed25519 key in signed notes (and our key id)."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + ED25519_TYPE + public_key).digest()[:4]


def check_key_name(name: str) -> str:
    """Return ``name`` if it is a valid note key name (non-empty, no spaces, no '+')."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise NoteError(f"key name {name!r} must be non-empty with no spaces and no '+'")
    return name


def verifier_key(name: str, public_key: bytes) -> str:
    """The text form of a verifier key: ``<name>+<hex key id>+<base64(0x01 || public key)>``."""
    check_key_name(name)
    kid = note_key_id(name, public_key).hex()
    return f"{name}+{kid}+{base64.b64encode(ED25519_TYPE + public_key).decode('ascii')}"


def parse_verifier_key(text: str) -> tuple[str, bytes, bytes]:
    """Parse a verifier key into (name, 4-byte key id, 32-byte public key), checking the hash."""
    parts = text.strip().split("+", 2)  # base64 may itself hold '+'
    if len(parts) != 3:
        raise NoteError("verifier key must look like <name>+<hex key id>+<base64 key>")
    name, kid_hex, key_b64 = parts
    check_key_name(name)
    try:
        kid = bytes.fromhex(kid_hex)
        raw = base64.b64decode(key_b64, validate=True)
    except (ValueError, binascii.Error):
        raise NoteError("verifier key has a malformed key id or key") from None
    if len(kid) != 4:
        raise NoteError("verifier key id must be 8 hex digits")
    if len(raw) != 33 or raw[:1] != ED25519_TYPE:
        raise NoteError("verifier key is not an Ed25519 key")
    pub = raw[1:]
    if note_key_id(name, pub) != kid:
        raise NoteError(f"verifier key id {kid_hex} does not match its name and key")
    return name, kid, pub


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: bytes
    sig: bytes


@dataclass(frozen=True)
class Note:
    """A parsed note: the signed text and its signature lines."""

    text: str
    signatures: tuple[NoteSignature, ...]


def sign_note(text: str, name: str, key_id: bytes, sign: Callable[[bytes], bytes]) -> bytes:
    """Sign ``text`` (must end with a newline and hold no blank line) and return the note bytes."""
    check_key_name(name)
    _check_text(text)
    sig = sign(text.encode("utf-8"))
    line = f"{SIG_PREFIX}{name} {base64.b64encode(key_id + sig).decode('ascii')}\n"
    return (text + "\n" + line).encode("utf-8")


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("note text does not end with a newline")
    if "\n\n" in text:
        raise NoteError("note text holds a blank line")
    for ch in text:
        if ord(ch) < 0x20 and ch != "\n":
            raise NoteError(f"note text holds control character U+{ord(ch):04X}")


def parse_note(raw: bytes) -> Note:
    """Parse note bytes, raising :class:`NoteError` that says what is wrong."""
    if not isinstance(raw, (bytes, bytearray)):
        raise NoteError("note is not bytes")
    if len(raw) > MAX_NOTE_BYTES:
        raise NoteError(f"note is {len(raw)} bytes, more than {MAX_NOTE_BYTES}")
    try:
        s = bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NoteError(f"note is not UTF-8 (byte {exc.start})") from None
    cut = s.rfind("\n\n")
    if cut < 0:
        raise NoteError("note has no blank line before its signatures")
    text, sigblock = s[: cut + 1], s[cut + 2 :]
    _check_text(text)
    if not sigblock.endswith("\n"):
        raise NoteError("note signature block does not end with a newline")
    lines = sigblock[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"note has {len(lines)} signatures, more than {MAX_SIGNATURES}")
    sigs = []
    for n, line in enumerate(lines, 1):
        if not line.startswith(SIG_PREFIX):
            raise NoteError(f"note signature line {n} does not start with an em dash and a space")
        fields = line[len(SIG_PREFIX) :].split(" ")
        if len(fields) != 2:
            raise NoteError(f"note signature line {n} is not '<name> <signature>'")
        name, b64 = fields
        check_key_name(name)
        try:
            blob = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise NoteError(f"note signature line {n} is not valid base64") from None
        if len(blob) < 5:
            raise NoteError(f"note signature line {n} is too short")
        sigs.append(NoteSignature(name, blob[:4], blob[4:]))
    if not sigs:
        raise NoteError("note has no signatures")
    return Note(text, tuple(sigs))


@dataclass(frozen=True)
class Checkpoint:
    """A C2SP tlog checkpoint body: origin, tree size, root hash."""

    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode('ascii')}\n"


def parse_checkpoint_text(text: str) -> Checkpoint:
    """Parse the text of a checkpoint note (extension lines after the root are allowed and ignored)."""
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise NoteError("checkpoint needs an origin line, a size line and a root line")
    origin, size_s, root_s = lines[0], lines[1], lines[2]
    if not origin:
        raise NoteError("checkpoint origin line is empty")
    if not _DECIMAL_RE.match(size_s):
        raise NoteError(f"checkpoint size {size_s[:40]!r} is not a decimal number")
    try:
        root = base64.b64decode(root_s, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError("checkpoint root is not valid base64") from None
    if len(root) != 32:
        raise NoteError(f"checkpoint root is {len(root)} bytes, not 32")
    return Checkpoint(origin, int(size_s), root)


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint with its note bytes and the signature lines it carries."""

    checkpoint: Checkpoint
    note: Note
    raw: bytes

    @property
    def size(self) -> int:
        return self.checkpoint.size

    @property
    def root(self) -> bytes:
        return self.checkpoint.root

    @property
    def origin(self) -> str:
        return self.checkpoint.origin


def parse_signed_checkpoint(raw: bytes) -> SignedCheckpoint:
    """Parse checkpoint note bytes (signatures are checked separately against trusted keys)."""
    note = parse_note(raw)
    return SignedCheckpoint(parse_checkpoint_text(note.text), note, bytes(raw))
