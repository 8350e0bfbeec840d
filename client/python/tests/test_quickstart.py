"""The README's examples run against the live server, exactly as shown."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from support import BrainServer

PACKAGE = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("example", ["quickstart.py", "quickstart_async.py"])
def test_example_runs_and_is_in_the_readme(server: BrainServer, example: str) -> None:
    path = PACKAGE / "examples" / example
    env = dict(os.environ, BRAIN_ADDR=server.addr, BRAIN_API_KEY=server.api_key)
    done = subprocess.run([sys.executable, str(path)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "has 1 scene(s)" in done.stdout, done.stdout
    if example == "quickstart.py":
        assert "deleted 1 scene(s), 1 memory item(s)" in done.stdout, done.stdout
        assert "NOT_FOUND PROJECT_NOT_FOUND" in done.stdout, done.stdout
    readme = (PACKAGE / "README.md").read_text()
    assert path.read_text().strip() in readme, f"README.md shows examples/{example} verbatim"
