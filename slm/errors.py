"""Errors a user can act on: each names the file (and line) at fault."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Malformed training data; the message reads ``file:line: reason``."""

    def __init__(self, path: Path | str, line: int | None, reason: str) -> None:
        location = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{location}: {reason}")
        self.path, self.line, self.reason = Path(path), line, reason

    def __reduce__(self) -> tuple[type, tuple[Path, int | None, str]]:
        # Rebuilt from its parts: a worker process's error must reach the parent intact
        # (pickle would otherwise call __init__ with the message alone).
        return type(self), (self.path, self.line, self.reason)


class CheckpointError(RuntimeError):
    """A model directory that is missing, truncated, tampered with or incompatible."""
