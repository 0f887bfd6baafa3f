"""Fixtures for integration tests: one real smoke pipeline run shared by the artifact tests."""

import time

import pytest
from snakerun import run_snakemake


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """One full smoke pipeline run, shared by the tests that inspect its artifacts."""
    workdir = tmp_path_factory.mktemp("smoke")
    t0 = time.perf_counter()
    proc = run_snakemake(workdir)
    seconds = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr[-6000:]
    return {"dir": workdir, "seconds": seconds, "proc": proc}
