"""schemathesis against the server's own OpenAPI schema: no input produces a 5xx."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.server import serve_in_thread

pytestmark = pytest.mark.slow


def test_no_generated_request_gets_a_server_error(tmp_path: Path) -> None:
    cli = shutil.which("schemathesis", path=os.path.dirname(sys.executable))
    assert cli, "schemathesis is a dev dependency"
    with serve_in_thread(f"sqlite:///{tmp_path / 'fuzz.db'}", str(tmp_path / "artifacts")) as url:
        proc = subprocess.run(
            [
                cli,
                "run",
                f"{url}/openapi.json",
                "--checks",
                "not_a_server_error",
                "--max-examples",
                "15",
                "--seed",
                "20261123",
                "--workers",
                "1",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,
        )
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "passed" in proc.stdout
