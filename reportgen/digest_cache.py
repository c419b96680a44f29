"""SHA-1 of large files, remembered between runs while the file is provably unchanged.

Hashing the three weight files (1.3 GB) took about 1 s of every run. A digest is reused
only when the file's identity and stamp are exactly as when it was hashed: device, inode,
size, mtime and ctime (ctime cannot be set by users; any write, chmod or rename moves it).
Like git's index, a file modified within the last few seconds is not remembered, because a
second write inside the same timestamp tick would leave the stamp unchanged.

The cache is an optimization only: an unreadable, corrupt or unwritable cache file is
ignored, and the digest is computed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

_CHUNK = 1 << 20
RACY_WINDOW_NS = 3_000_000_000   # modified this recently: hash, don't remember
MAX_ENTRIES = 64
CACHE_FILE = "sha1.json"


def cache_dir() -> Path:
    """REPORTGEN_CACHE_DIR, else $XDG_CACHE_HOME/reportgen, else ~/.cache/reportgen."""
    explicit = os.environ.get("REPORTGEN_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path("~/.cache").expanduser()) / "reportgen"


def sha1_of(path: Path) -> str:
    path = Path(path)
    before = os.stat(path)
    key = str(path.resolve())
    stamp = _stamp(before)
    entries = _read()
    entry = entries.get(key)
    if isinstance(entry, dict) and entry.get("stamp") == stamp and isinstance(entry.get("sha1"), str):
        return entry["sha1"]
    digest = hash_file(path)
    after = os.stat(path)
    if _stamp(after) == stamp and time.time_ns() - after.st_mtime_ns > RACY_WINDOW_NS:
        entries.pop(key, None)
        entries[key] = {"stamp": stamp, "sha1": digest}
        _write(dict(list(entries.items())[-MAX_ENTRIES:]))
    return digest


def hash_file(path: Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _stamp(st: os.stat_result) -> list[int]:
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _read() -> dict:
    try:
        data = json.loads((cache_dir() / CACHE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(entries: dict) -> None:
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{CACHE_FILE}.", dir=folder)
    except OSError:
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(entries, f, indent=1)
        os.replace(tmp, folder / CACHE_FILE)   # readers see the old file or the new one
    except OSError:
        Path(tmp).unlink(missing_ok=True)
