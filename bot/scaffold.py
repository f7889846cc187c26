"""`slmbot init DIR`: copy the starter project (``bot/templates/project``) into a new folder."""

from __future__ import annotations

import shutil
from pathlib import Path

TEMPLATE = Path(__file__).parent / "templates" / "project"


def create_project(directory: Path) -> list[Path]:
    """Copy the starter project into ``directory``; returns the files created.

    Raises:
        FileExistsError: ``directory`` exists and is not empty (nothing is overwritten).
    """
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise FileExistsError(f"{directory} exists and is not empty; choose a new folder")
    shutil.copytree(TEMPLATE, directory, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    return sorted(p for p in directory.rglob("*") if p.is_file())
