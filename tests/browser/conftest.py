"""A real server on a free port, and Debian's Chromium driven by Playwright (no browser download)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

import pytest

from bot.config import load_config
from bot.runtime import BotRuntime
from bot.server import create_app
from tests.conftest import ROOT
from tests.servers import serving

CHROMIUM = Path("/usr/bin/chromium")
# Nothing but the test server may be reached (no fonts, no telemetry, no DNS).
CHROMIUM_ARGS = ["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"]


@pytest.fixture
def live_server(example_model, tmp_path, monkeypatch) -> Iterator[str]:
    """The example bot served by uvicorn in a thread; yields its base URL."""
    monkeypatch.setenv("SLMBOT_API_TOKEN", "test-token")
    runtime = BotRuntime.load(
        load_config(ROOT / "config.toml"), model_dir=example_model, database_url=f"sqlite:///{tmp_path}/c.db", data_dir=tmp_path, seed=0
    )
    with serving(create_app(runtime)) as url:
        yield url


@pytest.fixture
def browser():
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed (make test installs it: apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()
