"""A validated policy kept in the data directory, so the next start restores it instead of
validating every file again.

Validating the policy means importing pydantic and building some forty schemas: about a hundred
milliseconds, most of what ``ggen console`` spends before its first frame beyond Textual itself.
A live engine (``ggen console``, ``ggen watch``) therefore keeps the validated result in
``DATA_DIR/policy-snapshot.pickle`` and restores it on the next start when nothing changed.

- The key is the SHA-256 of every policy file, of the runbooks directory's path, and of the code
  that gives the files their meaning (the schemas, the loaders, this module, pydantic's version).
  A change to any of them misses; a miss validates the files as always and rewrites the snapshot.
- A snapshot that cannot be read, has another key or another format is ignored and replaced:
  never trusted, never an error. One that cannot be written (a read-only data directory) is
  simply not kept.
- It holds builtins only, and is restored by an unpickler that refuses every class. Each model
  becomes a :class:`Record`: read-only, with the model's class name, its fields, and the values
  of the properties its class defines (``Runbook.id``), so the engine reads it as it reads the
  model. Records are not models: nothing restored from a snapshot is validated or dumped again.
"""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import tempfile
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Callable

FORMAT = "ggen.policy-snapshot/1"
_MODEL = "\x00model"  # first item of the tuple that stands for a validated model
_CODE = ("common.py", "loader.py", "models.py", "bundle.py", "snapshot.py")


class Record:
    """A validated policy object restored from a snapshot: attributes only, read-only."""

    __slots__ = ("__dict__",)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is a validated policy and cannot be changed ({name})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is a validated policy and cannot be changed ({name})")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.__dict__ == self.__dict__

    def __hash__(self) -> int:
        return hash((type(self).__name__, *self.__dict__.values()))

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items())
        return f"{type(self).__name__}({fields})"


_record_types: dict[str, type[Record]] = {}


def _record(kind: str, fields: dict[str, Any]) -> Record:
    cls = _record_types.get(kind)
    if cls is None:
        cls = _record_types[kind] = type(kind, (Record,), {"__slots__": (), "__module__": __name__})
    rec = object.__new__(cls)
    object.__getattribute__(rec, "__dict__").update(fields)
    return rec


# ------------------------------------------------------------------------------------ encoding
def encode(value: Any) -> Any:
    """Turn validated models into builtins; TypeError for anything a snapshot cannot hold."""
    from pydantic import BaseModel

    def enc(v: Any) -> Any:
        if v is None or isinstance(v, (str, int, float, bool)):
            return v
        if isinstance(v, BaseModel):
            cls = type(v)
            fields = {name: enc(getattr(v, name)) for name in cls.model_fields}
            for klass in cls.__mro__:
                if klass is BaseModel:
                    break
                for name, attr in vars(klass).items():
                    if isinstance(attr, property) and name not in fields:
                        fields[name] = enc(getattr(v, name))
            return (_MODEL, cls.__name__, fields)
        if isinstance(v, list):
            return [enc(x) for x in v]
        if isinstance(v, tuple):
            return tuple(enc(x) for x in v)
        if isinstance(v, dict) and all(isinstance(k, str) for k in v):
            return {k: enc(x) for k, x in v.items()}
        raise TypeError(f"a policy snapshot cannot hold {type(v).__name__}")

    return enc(value)


def decode(value: Any) -> Any:
    """The inverse of :func:`encode`: builtins with models as :class:`Record` objects."""
    if isinstance(value, tuple):
        if len(value) == 3 and value[0] == _MODEL:
            return _record(value[1], {k: decode(v) for k, v in value[2].items()})
        return tuple(decode(x) for x in value)
    if isinstance(value, list):
        return [decode(x) for x in value]
    if isinstance(value, dict):
        return {k: decode(v) for k, v in value.items()}
    return value


class _BuiltinsOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"a policy snapshot holds builtins only, not {module}.{name}")


# ------------------------------------------------------------------------------------ the key
def code_fingerprint() -> bytes:
    """SHA-256 of the code that gives the policy files their meaning."""
    h = hashlib.sha256(FORMAT.encode())
    here = Path(__file__).resolve().parent
    paths = [here / name for name in _CODE]
    spec = find_spec("pydantic")
    if spec is not None and spec.origin:
        paths.append(Path(spec.origin).with_name("version.py"))
    for path in paths:
        try:
            h.update(path.read_bytes())
        except OSError:
            h.update(b"\x00missing " + str(path).encode())
    return h.digest()


def snapshot_key(root: Path, hashes: dict[str, str]) -> str:
    h = hashlib.sha256(code_fingerprint())
    h.update(str(root).encode())
    for name in sorted(hashes):
        h.update(f"\x00{name}\x00{hashes[name]}".encode())
    return h.hexdigest()


# ------------------------------------------------------------------------------------ read/write
def read_snapshot(path: Path, key: str) -> dict[str, Any] | None:
    """The parts kept under ``key``, or None when there is no usable snapshot with that key."""
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    try:
        data = _BuiltinsOnly(io.BytesIO(raw)).load()
    except Exception:  # any damage at all means "validate again"
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("key") != key:
        return None
    parts = data.get("parts")
    return decode(parts) if isinstance(parts, dict) else None


def write_snapshot(path: Path, key: str, parts: dict[str, Any]) -> bool:
    """Keep ``parts`` under ``key`` (atomically); False when it cannot be kept."""
    try:
        blob = pickle.dumps({"format": FORMAT, "key": key, "parts": encode(parts)}, protocol=pickle.HIGHEST_PROTOCOL)
    except TypeError:
        return False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".policy-snapshot.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(blob)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        return False
    return True


def restore_or_validate(
    path: Path, root: Path, hashes: dict[str, str], validate: Callable[[], dict[str, Any]]
) -> tuple[dict[str, Any], bool]:
    """The policy's parts from the snapshot at ``path`` when it matches, else from ``validate()``
    (then kept for next time). The flag says whether the snapshot was used."""
    key = snapshot_key(root, hashes)
    parts = read_snapshot(path, key)
    if parts is not None:
        return parts, True
    parts = validate()
    write_snapshot(path, key, parts)
    return parts, False
