"""`hpo.storage: postgresql://...` for real: two parallel HPO workers share one study in a PostgreSQL
database that this test starts (its own server on 127.0.0.1, a free port, a temporary data folder, a
password-protected role), through real snakemake on the micro preset.

The server runs as an unprivileged account (``postgres`` refuses root): the ``postgres`` system user
when it exists, else a temporary system user; as a non-root user, that user. PostgreSQL is apt-installed
when missing (as root); the test is skipped with the reason when that cannot work or the driver is missing.
"""

import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from snakerun import REPO, run_snakemake

pytestmark = pytest.mark.integration
MICRO = REPO / "tests" / "integration" / "micro.yaml"
N_TRIALS = 6
ROLE, PASSWORD, DB = "redsm5", "Hpo-pw-7Qz2xK9v", "redsm5_hpo"


def _pg_bin() -> Path | None:
    """The folder of initdb/postgres: PATH first, else Debian's /usr/lib/postgresql/<version>/bin."""
    if (found := shutil.which("initdb")) and shutil.which("postgres"):
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(versions[-1]).parent if versions else None


def _install_postgres() -> Path:
    if (bindir := _pg_bin()) is not None:
        return bindir
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("PostgreSQL is not installed and cannot be (needs root and apt-get: apt-get install postgresql)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "postgresql"]
    if subprocess.run(cmd, capture_output=True, env=env, timeout=600).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=env, timeout=600)
        subprocess.run(cmd, capture_output=True, env=env, timeout=600)
    if (bindir := _pg_bin()) is None:
        pytest.skip("apt-get install postgresql failed: no initdb/postgres binaries")
    return bindir


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A throwaway PostgreSQL server: initdb into a temp folder, postgres started as an unprivileged user,
    stopped by its PID (fast shutdown, SIGINT) in stop()."""

    def __init__(self, bindir: Path):
        self.bindir, self.proc, self.made_user = bindir, None, None
        self.base = Path(tempfile.mkdtemp(prefix="redsm5-pg-"))
        self.port = _free_port()
        self.admin_pw = "admin-" + os.urandom(6).hex()
        if os.geteuid() == 0:
            try:
                self.user = pwd.getpwnam("postgres")
            except KeyError:
                self.made_user = f"redsm5pg{os.getpid()}"
                subprocess.run(
                    ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", self.made_user],
                    check=True,
                    capture_output=True,
                )
                self.user = pwd.getpwnam(self.made_user)
            os.chown(self.base, self.user.pw_uid, self.user.pw_gid)
        else:
            self.user = pwd.getpwuid(os.getuid())

    def _as_user(self):
        return {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []} if os.geteuid() == 0 else {}

    def start(self) -> None:
        pwfile = self.base / "pw"
        pwfile.write_text(self.admin_pw + "\n")
        if os.geteuid() == 0:
            os.chown(pwfile, self.user.pw_uid, self.user.pw_gid)
        data = self.base / "data"
        init = subprocess.run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "pgadmin",
                "--pwfile",
                str(pwfile),
                "--auth",
                "scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            cwd=self.base,
            timeout=120,
            **self._as_user(),
        )
        assert init.returncode == 0, init.stderr[-2000:]
        self.log = open(self.base / "server.log", "w")
        self.proc = subprocess.Popen(
            [
                str(self.bindir / "postgres"),
                "-D",
                str(data),
                "-p",
                str(self.port),
                "-k",
                str(self.base),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=self.base,
            **self._as_user(),
        )
        import psycopg2

        end = time.monotonic() + 60
        while True:
            try:
                self.connect("pgadmin", self.admin_pw, "postgres").close()
                return
            except psycopg2.OperationalError:
                if self.proc.poll() is not None or time.monotonic() > end:
                    raise AssertionError(
                        "PostgreSQL did not start: " + (self.base / "server.log").read_text()[-2000:]
                    ) from None
                time.sleep(0.2)

    def connect(self, user: str, password: str, dbname: str):
        import psycopg2

        return psycopg2.connect(
            host="127.0.0.1", port=self.port, user=user, password=password, dbname=dbname, connect_timeout=5
        )

    def create_database(self, role: str, password: str, db: str) -> None:
        conn = self.connect("pgadmin", self.admin_pw, "postgres")
        conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
        with conn.cursor() as cur:
            cur.execute(f"CREATE ROLE {role} LOGIN PASSWORD %s", (password,))
            cur.execute(f"CREATE DATABASE {db} OWNER {role}")
        conn.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)  # the postmaster's fast shutdown
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        if getattr(self, "log", None):
            self.log.close()
        shutil.rmtree(self.base, ignore_errors=True)
        if self.made_user:
            subprocess.run(["userdel", self.made_user], capture_output=True)


@pytest.fixture
def postgres():
    pytest.importorskip("psycopg2", reason="the PostgreSQL driver psycopg2 is not installed (bash envs/install.sh)")
    server = Server(_install_postgres())
    try:
        server.start()
        yield server
    finally:
        server.stop()


def _open_storage(url: str, at: float) -> str:
    return (
        "import time; from workflow_lib.search.hpo import _rdb_storage; "
        f"time.sleep(max(0, {at} - time.time())); _rdb_storage({url!r})"
    )


def test_workers_opening_an_empty_database_together_and_a_wrong_password(postgres):
    from workflow_lib.search.hpo import _rdb_storage

    # four processes create Optuna's tables in an empty database at the same moment (without the retry
    # in _rdb_storage, some die of a UniqueViolation or DuplicateTable in about half the rounds); each must
    # open the storage
    for i in range(3):
        postgres.create_database(f"racer{i}", PASSWORD, f"redsm5_race{i}")
        url = f"postgresql://racer{i}:{PASSWORD}@127.0.0.1:{postgres.port}/redsm5_race{i}"
        at = time.time() + 4
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _open_storage(url, at)], cwd=REPO, stderr=subprocess.PIPE, text=True
            )
            for _ in range(4)
        ]
        errs = [p.communicate(timeout=120)[1] for p in procs]
        assert [p.returncode for p in procs] == [0] * 4, [e[-1500:] for e in errs]

    bad = f"postgresql://racer0:wrong-pw-123@127.0.0.1:{postgres.port}/redsm5_race0"
    with pytest.raises(
        RuntimeError,
        match=r"hpo.storage postgresql://racer0:\*\*\*@127.0.0.1:\d+/redsm5_race0: cannot "
        r"open the database .*password authentication failed",
    ) as exc:
        _rdb_storage(bad)
    assert "wrong-pw-123" not in str(exc.value)


def test_two_parallel_workers_share_a_postgres_study(postgres, tmp_path):
    import optuna
    import psycopg2

    t0 = time.perf_counter()
    postgres.create_database(ROLE, PASSWORD, DB)
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        postgres.connect(ROLE, "wrong-password", DB)
    url = f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:{postgres.port}/{DB}"
    overlay = tmp_path / "postgres.yaml"
    overlay.write_text(
        yaml.safe_dump(
            {
                "hpo": {
                    "storage": url,
                    "n_workers": 2,
                    "n_trials": N_TRIALS,
                    "heartbeat_s": 2,
                    "search_space": {"head": None, "learning_rate": {"type": "float", "low": 5e-4, "high": 3e-3}},
                }
            }
        )
    )
    proc = run_snakemake(tmp_path, "--until", "hpo_summary", preset=[str(MICRO), str(overlay)], timeout=900)
    assert proc.returncode == 0, proc.stderr[-5000:]
    res = tmp_path / "results"

    # the study lives in the database, not in a journal file
    assert not list(res.glob("hpo/*/*/v*/study.journal"))
    summary_path = next(res.glob("hpo/tiny-a/*/v1/study_summary.json"))
    summary = json.loads(summary_path.read_text())
    study = optuna.load_study(study_name=summary["study_name"], storage=url)
    trials = study.get_trials(deepcopy=False)
    states = [t.state.name for t in trials]
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    # none lost, none beyond n_trials (trials here take under a second, so claims often meet another
    # worker's tell: counting finished and running trials in two reads once claimed a trial too many)
    assert len(finished) == N_TRIALS, states
    assert "RUNNING" not in states and "WAITING" not in states, states
    assert len({t.params["learning_rate"] for t in finished}) == N_TRIALS  # distinct parameters, none duplicated
    assert len({t.user_attrs["trial_key"] for t in finished}) == N_TRIALS
    assert {t.user_attrs["worker"] for t in finished} == {"0", "1"}  # both workers trained trials
    spans = {
        w: [(t.datetime_start, t.datetime_complete) for t in finished if t.user_attrs["worker"] == w]
        for w in ("0", "1")
    }
    assert any(a0 < b1 and b0 < a1 for a0, a1 in spans["0"] for b0, b1 in spans["1"]), spans  # side by side
    assert summary["counts"]["complete"] + summary["counts"]["pruned"] == N_TRIALS
    assert sorted(t["number"] for t in summary["trials"]) == sorted(t.number for t in trials)

    # the summary names the storage with the password masked; no file the run wrote holds the password
    assert summary["storage"] == f"postgresql://{ROLE}:***@127.0.0.1:{postgres.port}/{DB}"
    leaked = [
        str(p) for p in tmp_path.rglob("*") if p.is_file() and p != overlay and PASSWORD.encode() in p.read_bytes()
    ]
    assert leaked == []
    print(f"postgres HPO study: {N_TRIALS} trials, 2 workers, {time.perf_counter() - t0:.0f} s")
