"""Job logging: readable + JSONL logs, secrets masked everywhere (also uncaught exceptions), rotation."""

import datetime
import io
import json
import logging
import os
import subprocess
import sys
import textwrap

import pytest

from workflow_lib.pipeline import jobs
from workflow_lib.tracking import logs

HF = "hf_" + "Q7w" * 12
PW = "hunter2hunter2"
ENV_SECRET = "envsecret-4242"
SECRETS = (HF, PW, ENV_SECRET, "s3cr3tpass")


def _run(tmp_path, body: str) -> subprocess.CompletedProcess:
    code = textwrap.dedent("""
        import logging, types
        from workflow_lib.pipeline import jobs
        from workflow_lib.tracking import logs
        log_file = {log!r}
        log = logging.getLogger("pipeline.test")
    """).format(log=str(tmp_path / "logs" / "refit" / "job.log")) + textwrap.dedent(body)
    env = {**os.environ, "HF_TOKEN": ENV_SECRET, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def _read(tmp_path):
    log = tmp_path / "logs" / "refit" / "job.log"
    return log.read_text(), [json.loads(line) for line in (log.parent / "job.log.jsonl").read_text().splitlines()]


def _assert_no_secret(*texts):
    for text in texts:
        for s in SECRETS:
            assert s not in text


def test_uncaught_exception_reaches_both_logs_masked(tmp_path):
    proc = _run(
        tmp_path,
        f"""
        logs.setup_logging(log_file, rule="refit", wildcards={{"trial_key": "9c1e2f3a4b5d"}})
        jobs.install_excepthook()
        log.info("token %s uri %s", {HF!r}, "https://bob:s3cr3tpass@host/x")
        log.warning("from env: {ENV_SECRET}")
        raise RuntimeError("cannot log in: password={PW}")
    """,
    )
    assert proc.returncode == 1
    text, records = _read(tmp_path)
    _assert_no_secret(text, proc.stderr, json.dumps(records))
    assert "token hf_*** uri https://bob:***@host/x" in text
    assert "from env: <HF_TOKEN:***>" in text
    assert "RuntimeError: cannot log in: password=***" in text and "Traceback" in text
    assert "RuntimeError: cannot log in: password=***" in proc.stderr
    assert [r["level"] for r in records] == ["INFO", "WARNING", "CRITICAL"]
    for r in records:
        assert set(r) >= {"time", "level", "logger", "message", "pid", "rule", "wildcards"}
        assert r["rule"] == "refit" and r["wildcards"] == {"trial_key": "9c1e2f3a4b5d"}
        assert isinstance(r["pid"], int) and datetime.datetime.fromisoformat(r["time"]).tzinfo is not None
    assert records[0]["logger"] == "pipeline.test" and records[0]["message"].startswith("token hf_*** uri")
    assert "exception" not in records[0]
    assert records[2]["message"] == "uncaught RuntimeError"
    assert records[2]["exception"].endswith("RuntimeError: cannot log in: password=***")


def test_job_context_manager_logs_and_reraises_masked(tmp_path, repo):
    proc = _run(
        tmp_path,
        f"""
        from workflow_lib import config
        raw = config.load_yaml({str(repo / "config" / "config.yaml")!r})
        smk = types.SimpleNamespace(log=[log_file], rule="refit", threads=2, config=raw,
                                    wildcards=types.SimpleNamespace(items=lambda: [("trial_key", "abc123abc123")]))
        with jobs.job(smk) as (cfg, threads):
            log.info("threads=%d results_dir=%s", threads, cfg["results_dir"])
            raise ValueError("bad uri http://u:s3cr3tpass@127.0.0.1:5000")
    """,
    )
    assert proc.returncode == 1
    text, records = _read(tmp_path)
    _assert_no_secret(text, proc.stderr, json.dumps(records))
    assert "threads=2 results_dir=results" in text
    assert [r["message"] for r in records][-1] == "job failed"
    assert records[-1]["exception"].endswith("ValueError: bad uri http://u:***@127.0.0.1:5000")
    assert records[0]["message"] == "rule refit, wildcards {'trial_key': 'abc123abc123'}, 2 thread(s)"
    assert text.count("Traceback") == 1  # JobFailed is not printed a second time by the excepthook


def test_job_failed_message_is_masked(tmp_path, monkeypatch):
    monkeypatch.setattr(jobs, "start", lambda smk: ({}, 1))
    with pytest.raises(jobs.JobFailed) as info, jobs.job(None):
        raise KeyError(f"token {HF}")
    assert str(info.value) == "KeyError: 'token hf_***'" and info.value.__cause__ is None


@pytest.fixture
def restore_root_logging():
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    for h in saved:
        root.addHandler(h)
    root.setLevel(level)


def test_rotation_of_both_files(tmp_path, restore_root_logging):
    log_file = tmp_path / "r.log"
    logs.setup_logging(str(log_file), max_bytes=2000, backup_count=2)
    logging.getLogger().handlers[0].setStream(io.StringIO())  # keep pytest's stderr quiet
    for i in range(200):
        logging.getLogger("rot").info("line %03d %s", i, "x" * 40)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["r.log", "r.log.1", "r.log.2", "r.log.jsonl", "r.log.jsonl.1", "r.log.jsonl.2"]
    for p in tmp_path.iterdir():
        assert 0 < p.stat().st_size <= 2000
    last = [json.loads(x) for x in (tmp_path / "r.log.jsonl").read_text().splitlines()]
    assert last[-1]["message"] == "line 199 " + "x" * 40
    assert "line 199" in (tmp_path / "r.log").read_text()


def test_filter_masks_args_exception_and_stack():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.MaskFilter())
    logger = logging.getLogger("mask.test")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise OSError(f"open failed for {HF}")
        except OSError:
            logger.error("ctx %r", {"password": PW}, exc_info=True, stack_info=True)
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    _assert_no_secret(out)
    assert "ctx {'password': '***'}" in out and "OSError: open failed for hf_***" in out and "Stack (most recent" in out
