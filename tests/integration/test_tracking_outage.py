"""A real `mlflow server` stops in the middle of a training-like job and comes back after it ended:
the job never slows down nor waits at its end, and afterwards every (run, metric, step) is in the
store exactly once, with the params and tags."""

import os
import signal
import socket
import statistics
import subprocess
import sys
import textwrap
import time
import urllib.request

import pytest

pytestmark = pytest.mark.integration

STEP_S = 0.02  # the job's simulated work per step

JOB = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from workflow_lib import config
    from workflow_lib.tracking.tracker import Tracker
    repo, results, uri, end_file = sys.argv[1:5]
    cfg = config.load(f"{repo}/config/config.yaml", overrides={"results_dir": results, "tracking": {"uri": uri}})
    tr = Tracker(cfg)
    print("replayer", tr._proc.pid, flush=True)
    study = tr.start("study", {"backbone": "b", "study_key": "s" * 12, "variant": 1})
    folds = [tr.start("fold", {"trial_key": "t" * 12, "fold": k}, parent=study, params={"lr": 0.1, "fold": k})
             for k in range(2)]
    step = 0
    while step < 30 or not Path(end_file).exists():
        t0 = time.perf_counter()
        time.sleep(%(step_s)s)  # the training step
        t1 = time.perf_counter()
        for k, f in enumerate(folds):
            tr.log_metrics(f, {"loss": 1 / (step + 1), "acc": step / 1000 + k}, step=step)
        t2 = time.perf_counter()
        print("step", step, f"{time.time():.3f}", f"{t2 - t0:.4f}", f"{t2 - t1:.4f}", flush=True)
        step += 1
    for f in folds:
        tr.set_tags(f, {"steps": str(step)})
        tr.end(f)
    tr.end(study)
    t0 = time.perf_counter()
    ok = tr.close()
    print("close", ok, f"{time.perf_counter() - t0:.3f}", step, flush=True)
""") % {"step_s": STEP_S}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(tmp_path, port: int, name: str) -> subprocess.Popen:
    """`mlflow server` in its own process group (job execution off: it starts faster)."""
    with open(tmp_path / f"{name}.log", "w") as log:
        return subprocess.Popen(
            [
                "mlflow",
                "server",
                "--backend-store-uri",
                f"sqlite:///{tmp_path}/mlflow.db",
                "--artifacts-destination",
                str(tmp_path / "mlartifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=tmp_path,
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        )


def _wait_health(url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"mlflow server exited with {proc.returncode}"
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"mlflow server at {url} did not answer /health within {timeout}s")


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _kill_group(pid: int | None) -> None:
    if pid is not None:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.parametrize("stop_when", ["behind", "caught-up"])
def test_server_outage_mid_run(tmp_path, repo, stop_when):
    """stop_when: the server stops as soon as the store holds some metrics (the replayer is still working
    through the job's backlog, and is stuck in a batch in the middle of the spool), or once the replayer
    has caught up with the job (it is stuck sending the latest steps while the job writes its last events
    and exits: before the fix it then took the spool for complete and deleted it with the ends unread)."""
    from mlflow.tracking import MlflowClient

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    results, end_file = tmp_path / "results", tmp_path / "end"
    spool = results / ".tracking" / "spool"
    server = job = replayer = None
    t_start = time.monotonic()
    try:
        # the job starts with the server: its replayer retries until the server answers
        server = _start_server(tmp_path, port, "server1")
        job = subprocess.Popen(
            [sys.executable, "-c", JOB, str(repo), str(results), url, str(end_file)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "MLFLOW_TRACKING_URI": ""},
        )
        replayer = int(job.stdout.readline().split()[1])
        _wait_health(url, server)
        t_up = time.monotonic()
        client = MlflowClient(url)
        steps: list[tuple[float, float, float]] = []  # (wall time, step seconds, tracking-call seconds)

        def read_steps(n: int | None) -> str | None:
            """Read n step lines (None: until the job's last line, which is returned)."""
            while n is None or n > 0:
                line = job.stdout.readline()
                assert line, job.stderr.read()[-3000:]
                if not line.startswith("step"):
                    return line
                steps.append(tuple(float(x) for x in line.split()[2:5]))
                n = None if n is None else n - 1

        def applied() -> bool:
            exp = client.get_experiment_by_name("redsm5")
            runs = client.search_runs([exp.experiment_id], "tags.`pipeline.stage` = 'fold'") if exp else []
            return any(r.data.metrics for r in runs)

        def caught_up() -> bool:  # all but the last ~0.2 s of events applied (SPOOL.offset counts them)
            own = list(spool.glob("*.jsonl"))
            off = own[0].with_name(own[0].name + ".offset") if own else None
            return bool(off and off.exists() and int(off.read_text() or 0) >= own[0].read_text().count("\n") - 20)

        # up: once the store holds some of the job's metrics (or the replayer caught up), the server stops mid-run
        deadline = time.monotonic() + 60
        while not applied() or (stop_when == "caught-up" and not caught_up()):
            assert time.monotonic() < deadline, (
                f"the job's replayer applied nothing (or did not catch up: {stop_when}) within 60s"
            )
            read_steps(10)
        _stop(server)
        t_down, down_wall = time.monotonic(), time.time()
        while sum(t > down_wall for t, _, _ in steps) < 100:  # ~2 s of training with the server gone
            read_steps(10)
        end_file.touch()
        t_end = time.monotonic()
        last = read_steps(None)
        out, err = job.communicate(timeout=60)
        job_end_s = time.monotonic() - t_end
        assert job.returncode == 0, err[-3000:]
        close_ok, close_s, n_steps = last.split()[1], float(last.split()[2]), int(last.split()[3])

        # training never blocked: steps during the outage are as fast as before it, the job ends promptly
        up = [s for t, s, _ in steps if t < down_wall]
        down = [s for t, s, _ in steps if t > down_wall]
        med_up, med_down = statistics.median(up), statistics.median(down)
        assert med_down < 1.5 * med_up + 0.01, (med_up, med_down)
        assert max(c for _, _, c in steps) < 0.25, max(c for _, _, c in steps)
        assert close_ok == "False" and close_s < 5, (close_ok, close_s)
        assert job_end_s < 10, job_end_s
        assert list(spool.glob("*.jsonl")), "the spool waits for the server"
        os.kill(replayer, 0)  # the job's replayer outlives the job and keeps retrying

        # the server comes back on the same port and store: the waiting replayer applies the rest
        server = _start_server(tmp_path, port, "server2")
        _wait_health(url, server)
        t_back = time.monotonic()
        deadline = time.monotonic() + 60
        while list(spool.glob("*.jsonl")):
            assert time.monotonic() < deadline, "spool not replayed within 60s:\n" + "\n".join(
                p.read_text()[-3000:] for p in spool.glob("*.log")
            )
            time.sleep(0.2)
        t_replayed = time.monotonic()

        exp = client.get_experiment_by_name("redsm5")
        runs = client.search_runs([exp.experiment_id])
        assert sorted(r.data.tags["pipeline.stage"] for r in runs) == ["fold", "fold", "study"]
        for r in runs:
            assert r.info.status == "FINISHED"
            if r.data.tags["pipeline.stage"] != "fold":
                continue
            for key in ("loss", "acc"):
                hist = sorted(m.step for m in client.get_metric_history(r.info.run_id, key))
                assert hist == list(range(n_steps)), f"{key}: {len(hist)} values for {n_steps} steps"
            assert r.data.params["lr"] == "0.1" and r.data.tags["steps"] == str(n_steps)
        print(
            f"\nserver up {t_up - t_start:.1f}s; {len(up)} steps before the outage, {len(down)} during it; "
            f"step median {med_up * 1000:.1f} ms up / {med_down * 1000:.1f} ms down; "
            f"close {close_s:.2f}s; restart {t_back - t_down:.1f}s; replayed {t_replayed - t_back:.1f}s after; "
            f"{2 * 2 * n_steps} metric values, total {time.monotonic() - t_start:.1f}s"
        )
    finally:
        if job is not None and job.poll() is None:
            job.kill()
            job.wait()
        _stop(server)
        _kill_group(replayer)
