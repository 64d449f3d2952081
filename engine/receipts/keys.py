"""Ed25519 signing keys, the verifier-key file, and the trust set used by verification.

The key store is a 0700 directory holding one PEM (PKCS#8) private key per key, each created
0600 with O_EXCL, plus ``keyring.json`` (the ledger origin, the genesis key, and every public
key). A private key that group or others can read is refused, as OpenSSH does. Key ids are the
4-byte note key hash (hex); fingerprints are the SHA-256 of the raw public key.

Which key may sign which ``seq`` is not stored here: the ledger's ``key.rotated`` receipts
(each signed by the outgoing key, naming the new one) are the record, so a verifier rebuilds
the validity windows from the log itself (:meth:`TrustSet.apply_rotation`).
"""
from __future__ import annotations

import base64
import hashlib
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Protocol

if TYPE_CHECKING:  # cryptography is imported where a key is made, loaded or checked: not on every start
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

import orjson

from .note import NoteError, check_key_name, note_key_id, parse_verifier_key, verifier_key

KEYRING_FILE = "keyring.json"
PUBLIC_KEYS_HEADER = "# ggen verifier keys"


class KeyStoreError(Exception):
    """The key store is missing, unreadable, unsafe or inconsistent."""


def fingerprint(public_key: bytes) -> str:
    """Full SHA-256 fingerprint of a raw Ed25519 public key."""
    return "SHA256:" + hashlib.sha256(public_key).hexdigest()


@dataclass(frozen=True)
class Signer:
    """A private key ready to sign, with its note key name and key id."""

    name: str
    key_id: bytes
    private_key: Ed25519PrivateKey
    public_key: bytes

    @property
    def key_id_hex(self) -> str:
        return self.key_id.hex()

    def sign(self, data: bytes) -> bytes:
        return self.private_key.sign(data)

    @classmethod
    def generate(cls, name: str) -> "Signer":
        """A fresh key (used by tests and by the key store)."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return cls.from_private(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_private(cls, name: str, key: Ed25519PrivateKey) -> "Signer":
        from cryptography.hazmat.primitives import serialization

        check_key_name(name)
        pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return cls(name, note_key_id(name, pub), key, pub)

    def signer(self, key_id_hex: str) -> "Signer":
        """A lone Signer is its own key source (handy for tests and tools)."""
        if key_id_hex != self.key_id_hex:
            raise KeyStoreError(f"this signer holds key {self.key_id_hex}, not {key_id_hex}")
        return self


class SignerSource(Protocol):
    """What the ledger asks for a private key by key id (the key store implements it)."""

    def signer(self, key_id_hex: str) -> Signer: ...


@dataclass
class TrustedKey:
    """A public key trusted to sign receipts with ``from_seq <= seq <= to_seq`` (None: open-ended)."""

    name: str
    key_id: bytes
    public_key: bytes
    from_seq: int = 0
    to_seq: int | None = None
    _verifier: Ed25519PublicKey | None = field(default=None, repr=False, compare=False)

    @property
    def key_id_hex(self) -> str:
        return self.key_id.hex()

    def valid_at(self, seq: int) -> bool:
        return seq >= self.from_seq and (self.to_seq is None or seq <= self.to_seq)

    def window_text(self) -> str:
        return f"{self.from_seq}-{'' if self.to_seq is None else self.to_seq}"

    def verify(self, sig: bytes, data: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature

        if self._verifier is None:
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

            self._verifier = Ed25519PublicKey.from_public_bytes(self.public_key)
        try:
            self._verifier.verify(sig, data)
            return True
        except InvalidSignature:
            return False


class TrustSet:
    """The keys a verifier trusts, by key id, with validity windows that only ever narrow."""

    def __init__(self, keys: Iterable[TrustedKey] = ()) -> None:
        self.keys: dict[str, TrustedKey] = {}
        for k in keys:
            self.keys[k.key_id_hex] = k

    def __bool__(self) -> bool:
        return bool(self.keys)

    def get(self, key_id_hex: str) -> TrustedKey | None:
        return self.keys.get(key_id_hex)

    def apply_rotation(self, old_key_id_hex: str, seq: int, new_name: str, new_public_key: bytes) -> TrustedKey:
        """Record a verified ``key.rotated`` receipt at ``seq``: the old key ends at ``seq``, the
        new one starts at ``seq + 1``."""
        old = self.keys[old_key_id_hex]
        old.to_seq = seq if old.to_seq is None else min(old.to_seq, seq)
        kid = note_key_id(new_name, new_public_key)
        cur = self.keys.get(kid.hex())
        if cur is None:
            cur = TrustedKey(new_name, kid, new_public_key, seq + 1, None)
            self.keys[kid.hex()] = cur
        else:
            cur.from_seq = max(cur.from_seq, seq + 1)
        return cur

    def signer_at(self, seq: int) -> list[TrustedKey]:
        return [k for k in self.keys.values() if k.valid_at(seq)]

    def copy(self) -> "TrustSet":
        return TrustSet(
            TrustedKey(k.name, k.key_id, k.public_key, k.from_seq, k.to_seq) for k in self.keys.values()
        )


def format_public_keys(origin: str, keys: Iterable[TrustedKey]) -> str:
    """The verifier-key file written by ``ggen keys export-public``."""
    lines = [
        f"{PUBLIC_KEYS_HEADER} for ledger origin {origin}",
        "# one key per line: <verifier key> <first seq> <last seq or ->",
    ]
    for k in sorted(keys, key=lambda k: k.from_seq):
        last = "-" if k.to_seq is None else str(k.to_seq)
        lines.append(f"{verifier_key(k.name, k.public_key)} {k.from_seq} {last}")
    return "\n".join(lines) + "\n"


def parse_public_keys(text: str, source: str = "public key file") -> list[TrustedKey]:
    """Parse a verifier-key file: ``<vkey> [<first seq> <last seq or ->]`` per line, ``#`` comments."""
    keys: list[TrustedKey] = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) not in (1, 3):
            raise KeyStoreError(f"{source}: line {n}: expected '<verifier key> [<first seq> <last seq or ->]'")
        try:
            name, kid, pub = parse_verifier_key(parts[0])
        except NoteError as exc:
            raise KeyStoreError(f"{source}: line {n}: {exc}") from None
        lo, hi = 0, None
        if len(parts) == 3:
            try:
                lo = int(parts[1])
                hi = None if parts[2] == "-" else int(parts[2])
            except ValueError:
                raise KeyStoreError(f"{source}: line {n}: seq window must be integers (or '-')") from None
            if lo < 0 or (hi is not None and hi < lo):
                raise KeyStoreError(f"{source}: line {n}: seq window {parts[1]}..{parts[2]} is empty")
        keys.append(TrustedKey(name, kid, pub, lo, hi))
    if not keys:
        raise KeyStoreError(f"{source}: holds no verifier keys")
    return keys


def load_public_keys(path: Path) -> list[TrustedKey]:
    """Read a verifier-key file, with errors that name it."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KeyStoreError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyStoreError(f"{path}: cannot read: {exc}") from None
    return parse_public_keys(text, str(path))


def check_private_key_file(path: Path) -> None:
    """Refuse a private key file that is not a regular file owned by us with mode 0600 or stricter."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise KeyStoreError(f"private key {path} is missing") from None
    if not stat.S_ISREG(st.st_mode):
        raise KeyStoreError(f"private key {path} is not a regular file")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise KeyStoreError(
            f"private key {path} is readable by group or others (mode {mode:04o}); "
            f"refusing to use it. Fix with: chmod 600 {path}"
        )
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise KeyStoreError(f"private key {path} is owned by uid {st.st_uid}, not by you (uid {os.getuid()})")


def _write_new_file(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` exclusively with ``mode`` and write ``data`` durably."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace_file(path: Path, data: bytes, mode: int = 0o600) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    _write_new_file(tmp, data, mode)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


@dataclass(frozen=True)
class KeyInfo:
    """Public facts about one key of the store."""

    key_id: str
    name: str
    public_key: bytes
    created_at_ms: int
    file: str

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)

    def to_json(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "name": self.name,
            "public_key": base64.b64encode(self.public_key).decode("ascii"),
            "fingerprint": self.fingerprint,
            "verifier_key": verifier_key(self.name, self.public_key),
            "created_at_ms": self.created_at_ms,
            "file": self.file,
        }


def default_origin() -> str:
    """A fresh ledger origin: unique, so two machines' exports never mix."""
    return f"ggen.ledger/{secrets.token_hex(6)}"


class KeyStore:
    """The signing keys of one data directory."""

    def __init__(self, directory: Path, origin: str, genesis_key_id: str, keys: list[KeyInfo]) -> None:
        self.directory = Path(directory)
        self.origin = origin
        self.genesis_key_id = genesis_key_id
        self.keys = keys
        self._signers: dict[str, Signer] = {}

    # -- creation and loading -------------------------------------------------------------
    @classmethod
    def exists(cls, directory: Path) -> bool:
        return (Path(directory) / KEYRING_FILE).exists()

    @classmethod
    def init(cls, directory: Path, origin: str | None = None, now_ms: int = 0) -> "KeyStore":
        """Create the store with its first (genesis) key; refuses if one already exists."""
        directory = Path(directory)
        origin = check_key_name(origin or default_origin())
        if cls.exists(directory):
            raise KeyStoreError(f"keys already exist in {directory}; use `ggen keys rotate` to replace the signing key")
        directory.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            directory.mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise KeyStoreError(f"cannot create {directory}: {exc.strerror or exc}") from None
        os.chmod(directory, 0o700)
        store = cls(directory, origin, "", [])
        info = store._new_key(now_ms)
        store.genesis_key_id = info.key_id
        store._save()
        return store

    @classmethod
    def open(cls, directory: Path) -> "KeyStore":
        """Load the store (public data only; private keys are read when first used)."""
        directory = Path(directory)
        path = directory / KEYRING_FILE
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise KeyStoreError(f"no signing keys in {directory}; run `ggen keys init`") from None
        except OSError as exc:
            raise KeyStoreError(f"cannot read {path}: {exc.strerror or exc}") from None
        try:
            obj = orjson.loads(raw)
            origin = check_key_name(obj["origin"])
            genesis = str(obj["genesis"])
            keys = [
                KeyInfo(
                    key_id=str(k["key_id"]),
                    name=check_key_name(k["name"]),
                    public_key=base64.b64decode(k["public_key"], validate=True),
                    created_at_ms=int(k["created_at_ms"]),
                    file=str(k["file"]),
                )
                for k in obj["keys"]
            ]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, NoteError) as exc:
            raise KeyStoreError(f"{path}: malformed keyring ({exc})") from None
        for k in keys:
            if note_key_id(k.name, k.public_key).hex() != k.key_id or "/" in k.file or k.file.startswith("."):
                raise KeyStoreError(f"{path}: entry for key {k.key_id} is inconsistent")
        if genesis not in {k.key_id for k in keys}:
            raise KeyStoreError(f"{path}: genesis key {genesis} is not in the keyring")
        return cls(directory, origin, genesis, keys)

    @classmethod
    def open_or_init(cls, directory: Path, origin: str | None = None, now_ms: int = 0) -> "KeyStore":
        """Open the store, creating it (with a genesis key) on first use."""
        if cls.exists(directory):
            return cls.open(directory)
        return cls.init(directory, origin, now_ms)

    def _save(self) -> None:
        doc = {
            "version": 1,
            "origin": self.origin,
            "genesis": self.genesis_key_id,
            "keys": [
                {
                    "key_id": k.key_id,
                    "name": k.name,
                    "public_key": base64.b64encode(k.public_key).decode("ascii"),
                    "fingerprint": k.fingerprint,
                    "created_at_ms": k.created_at_ms,
                    "file": k.file,
                }
                for k in self.keys
            ],
        }
        _replace_file(self.directory / KEYRING_FILE, orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n", 0o600)

    def _new_key(self, now_ms: int) -> KeyInfo:
        from cryptography.hazmat.primitives import serialization

        signer = Signer.generate(self.origin)
        fname = f"ed25519-{signer.key_id_hex}.key"
        pem = signer.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        try:
            _write_new_file(self.directory / fname, pem, 0o600)
        except FileExistsError:
            raise KeyStoreError(f"{self.directory / fname} already exists; refusing to overwrite a key") from None
        pub_line = verifier_key(self.origin, signer.public_key) + "\n"
        pub_path = self.directory / f"ed25519-{signer.key_id_hex}.pub"
        _replace_file(pub_path, pub_line.encode("ascii"), 0o644)
        info = KeyInfo(signer.key_id_hex, self.origin, signer.public_key, now_ms, fname)
        self.keys.append(info)
        self._signers[info.key_id] = signer
        return info

    # -- use ----------------------------------------------------------------------------------
    def info(self, key_id_hex: str) -> KeyInfo:
        for k in self.keys:
            if k.key_id == key_id_hex:
                return k
        raise KeyStoreError(f"key {key_id_hex} is not in the key store {self.directory}")

    def private_key_path(self, key_id_hex: str) -> Path:
        return self.directory / self.info(key_id_hex).file

    def signer(self, key_id_hex: str) -> Signer:
        """The private key with this id, loaded once after checking the file's permissions."""
        cached = self._signers.get(key_id_hex)
        if cached is not None:
            return cached
        try:
            info = self.info(key_id_hex)
        except KeyStoreError:
            # Another process (``ggen keys rotate``) may have added it since we loaded.
            fresh = KeyStore.open(self.directory)
            self.keys, self.genesis_key_id = fresh.keys, fresh.genesis_key_id
            info = self.info(key_id_hex)
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        path = self.directory / info.file
        check_private_key_file(path)
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError, OSError) as exc:
            raise KeyStoreError(f"private key {path} is unreadable: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyStoreError(f"private key {path} is not an Ed25519 key")
        signer = Signer.from_private(info.name, key)
        if signer.key_id_hex != key_id_hex:
            raise KeyStoreError(f"private key {path} does not match key id {key_id_hex}")
        self._signers[key_id_hex] = signer
        return signer

    def new_key(self, now_ms: int) -> KeyInfo:
        """Generate and store a new key (not yet in use: a ``key.rotated`` receipt activates it)."""
        self._reload()  # another process may have added a key since we loaded: keep it in the keyring
        info = self._new_key(now_ms)
        self._save()
        return info

    def _reload(self) -> None:
        if self.exists(self.directory):
            fresh = KeyStore.open(self.directory)
            self.keys, self.genesis_key_id = fresh.keys, fresh.genesis_key_id

    def discard_key(self, key_id_hex: str) -> None:
        """Remove a key that never signed anything (a rotation that failed after creating it):
        its files and its keyring entry. Never call it for a key the ledger has used."""
        self._reload()
        info = self.info(key_id_hex)
        if key_id_hex == self.genesis_key_id:
            raise KeyStoreError(f"key {key_id_hex} is the genesis key; refusing to discard it")
        self.keys = [k for k in self.keys if k.key_id != key_id_hex]
        self._signers.pop(key_id_hex, None)
        self._save()
        for name in (info.file, f"ed25519-{key_id_hex}.pub"):
            try:
                (self.directory / name).unlink()
            except FileNotFoundError:
                pass

    def anchors(self) -> TrustSet:
        """The trust a local verifier starts from: the genesis key, valid from seq 0."""
        g = self.info(self.genesis_key_id)
        return TrustSet([TrustedKey(g.name, bytes.fromhex(g.key_id), g.public_key, 0, None)])
