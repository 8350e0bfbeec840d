"""Fixtures: one live brain-server per test session."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support import BrainServer, server_binary  # noqa: E402


@pytest.fixture(scope="session")
def server() -> Iterator[BrainServer]:
    running = BrainServer(server_binary())
    try:
        yield running
    finally:
        running.stop()
