"""Shared fixtures: paths to the example configs and to the real data in ../shared/data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.sources.recorded_server import RecordedServer

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The real third-party data folder; skips the test with a clear message where absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (it sits beside the project in CI)")
    return SHARED_DATA


@pytest.fixture
def server() -> Iterator[RecordedServer]:
    """A recorded-response HTTP server on 127.0.0.1 (source provider tests)."""
    srv = RecordedServer()
    yield srv
    srv.close()


@pytest.fixture
def sleeps() -> list[float]:
    """Collects the back-off sleeps a provider asked for instead of sleeping."""
    return []
