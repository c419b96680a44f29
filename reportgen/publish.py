"""The output folder: checked and locked before work starts, assembled in a staging folder
beside it, and swapped into place in one atomic step, so that a run killed at any moment
(SIGKILL included) leaves either the previous complete report or the new complete one."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import shutil
import tempfile
from pathlib import Path

from .errors import UsageError

MARKER = "results.json"   # a folder holding a reportgen results.json is a report folder


def check_writable(target: Path) -> None:
    """Fail early (exit 2) if the report cannot be written to `target`."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise UsageError(f"output {target} exists and is not a folder", hint="choose another -o")
    if target.is_dir() and any(target.iterdir()) and not _is_report(target):
        raise UsageError(
            f"output folder {target} is not empty and holds no reportgen report; "
            f"reportgen replaces the whole folder",
            hint="choose a new or empty folder with -o")
    parent = target.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        raise UsageError(f"cannot write in {parent} ({exc.strerror})",
                         hint="choose a writable folder with -o") from None


def _is_report(folder: Path) -> bool:
    try:
        return json.loads((folder / MARKER).read_text("utf-8")).get("schema", "").startswith("reportgen.")
    except (OSError, ValueError, AttributeError):
        return False


def _sibling(target: Path, kind: str) -> Path:
    return target.parent / f".{target.name}.{kind}"


class OutputLock:
    """An exclusive flock on a file beside the target, held for the whole run. The kernel
    drops it when the process dies, so a killed run never blocks the next one."""

    def __init__(self, target: Path):
        self.target = Path(target).absolute()
        self.path = _sibling(self.target, "lock")
        self._fd: int | None = None

    def __enter__(self) -> "OutputLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise UsageError(f"another reportgen run (pid {holder}) is writing {self.target}",
                             hint="wait for it to finish, or choose another -o") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        recover(self.target)
        return self

    def __exit__(self, *exc_info) -> None:
        if self._fd is not None:
            os.close(self._fd)   # releases the flock; the empty lock file may stay
            self._fd = None


def recover(target: Path) -> None:
    """Clean up after a killed run (call with the lock held): put back a previous report
    that the fallback swap had moved aside, and delete abandoned staging folders."""
    leftovers = sorted(target.parent.glob(f".{target.name}.old-*"))
    if leftovers and not target.exists():
        os.rename(leftovers.pop(), target)
    for path in leftovers + list(target.parent.glob(f".{target.name}.partial-*")):
        shutil.rmtree(path, ignore_errors=True)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths (Linux renameat2 RENAME_EXCHANGE). False where
    the system or file system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EXDEV):
        return False
    raise OSError(err, os.strerror(err), str(b))


class Staging:
    """A folder beside the target; `publish` swaps it in, leaving the target complete."""

    def __init__(self, target: Path):
        self.target = Path(target).absolute()
        self.path = _sibling(self.target, f"partial-{os.getpid()}")
        self.published = False

    def __enter__(self) -> "Staging":
        shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(parents=True)
        return self

    def publish(self) -> None:
        shutil.rmtree(self.path / ".scratch", ignore_errors=True)
        if not self.target.exists():
            os.rename(self.path, self.target)            # atomic: nothing to lose
        elif exchange(self.path, self.target):
            shutil.rmtree(self.path, ignore_errors=True)  # now holds the previous report
        else:
            # Two renames: a kill between them leaves the previous report in .old-PID,
            # which recover() puts back at the next run.
            old = _sibling(self.target, f"old-{os.getpid()}")
            os.rename(self.target, old)
            os.rename(self.path, self.target)
            shutil.rmtree(old, ignore_errors=True)
        self.published = True

    def __exit__(self, *exc_info) -> None:
        if not self.published:
            shutil.rmtree(self.path, ignore_errors=True)
