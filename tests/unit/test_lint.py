"""ruff holds the code to the rule set chosen in pyproject.toml ([tool.ruff]) and to one format."""

import shutil
import subprocess
import sys

import pytest


def _ruff(repo, *args):
    exe = shutil.which("ruff")
    cmd = [exe] if exe else [sys.executable, "-m", "ruff"]
    return subprocess.run([*cmd, *args], cwd=repo, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args", [("check", "--no-cache", "."), ("format", "--check", "--no-cache", ".")])
def test_ruff_is_clean(repo, args):
    proc = _ruff(repo, *args)
    assert proc.returncode == 0, f"ruff {' '.join(args)}:\n{proc.stdout[-4000:]}{proc.stderr[-2000:]}"
