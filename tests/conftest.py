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


POSTGRES_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture
def postgres_url():
    """A PostgreSQL URL whose tables live in a fresh schema, dropped afterwards (CI starts the server)."""
    import uuid

    from sqlalchemy import create_engine, text

    schema = f"slmbot_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_SERVER)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    yield f"{POSTGRES_SERVER}?options=-csearch_path%3D{schema}"
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


REDIS_SERVER = "redis://127.0.0.1:6379/0"


@pytest.fixture
def redis_url() -> str:
    """The machine's Redis (CI starts it); a clear failure when it is down."""
    import redis

    try:
        redis.Redis.from_url(REDIS_SERVER).ping()
    except redis.RedisError as error:
        pytest.fail(f"Redis at {REDIS_SERVER} is not reachable ({error}): start it (see .ci/run)")
    return REDIS_SERVER


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """Each test using this runs once on a SQLite file and once on the local PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/conversations.db"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(scope="session")
def example_model(tmp_path_factory) -> Path:
    """The example shop bot's NLU model, trained once per test session (about half a minute)."""
    from rich.console import Console

    from bot.config import load_config
    from bot.training import train_nlu_command

    project = load_config(ROOT / "config.toml")
    out = tmp_path_factory.mktemp("example") / "nlu"
    train_nlu_command(project, project.nlu.data, None, out, None, console=Console(quiet=True), device="cpu")
    return out
