"""`ruff check src tests benchmarks` with the rules in pyproject.toml ([tool.ruff]), so the README's test
command lints too. Skipped where ruff is not installed (it comes with the `dev` extra)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ruff() -> list[str] | None:
    if importlib.util.find_spec("ruff") is not None:
        return [sys.executable, "-m", "ruff"]
    exe = shutil.which("ruff") or shutil.which("ruff", path=str(Path(sys.executable).parent))
    return [exe] if exe else None


def test_ruff_check_passes():
    ruff = _ruff()
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    proc = subprocess.run([*ruff, "check", "--no-cache", "--output-format", "concise", "src", "tests", "benchmarks"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"ruff check found problems (`ruff check --fix` repairs most):\n{proc.stdout[-5000:]}"
