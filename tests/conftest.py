"""Shared fixtures: real data from ../shared/data when present, and a tiny labelled set."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# torch with 2 threads collapses when anything else runs on the other core.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture
def tiny_path() -> Path:
    return FIXTURES / "tiny.jsonl"


def shared_split(corpus: str, split: str) -> Path:
    """A split of a public benchmark; the test is skipped when the data is not on this machine."""
    path = SHARED_DATA / corpus / split
    if not path.is_dir():
        pytest.skip(f"{path} not available")
    return path
