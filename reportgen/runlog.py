"""--log-file: timestamped lines appended for cron (start, models, skipped inputs with
their reasons, outputs, exit code). No file given: every call does nothing."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from .errors import UsageError


class RunLog:
    def __init__(self, path: Path | None):
        self.path = Path(path) if path else None
        self._file = None

    def __enter__(self) -> "RunLog":
        if self.path:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "a", encoding="utf-8", buffering=1)
            except OSError as exc:
                raise UsageError(f"--log-file {self.path}: cannot append ({exc.strerror})") from None
        return self

    def line(self, text: str) -> None:
        if self._file:
            stamp = datetime.now().astimezone().isoformat(timespec="seconds")
            for part in text.splitlines() or [""]:
                self._file.write(f"{stamp} {part}\n")

    def __exit__(self, *exc_info) -> None:
        if self._file:
            self._file.close()
            self._file = None
