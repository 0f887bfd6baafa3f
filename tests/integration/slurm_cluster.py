"""A real single-node SLURM cluster on this machine, for tests/integration/test_slurm.py.

Debian's munge, slurmctld and slurmd (installed with apt when missing), no systemd, no cgroups,
no accounting. The config is /etc/slurm/slurm.conf (SLURM's default path: the executor plugin's
job step drops SLURM_CONF before its inner srun), written only when absent or written here before,
and removed again by stop(). Everything else the cluster writes (pid files, state, spool, logs,
the job-completion log) lives in ROOT (default /tmp/redsm5-slurm, env REDSM5_SLURM_DIR). Daemons
are stopped by the PIDs in ROOT's pid files, also stale ones a crashed earlier run left behind.
"""

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(os.environ.get("REDSM5_SLURM_DIR", "/tmp/redsm5-slurm"))
PARTITION = "smoke"
PACKAGES = ("munge", "slurmctld", "slurmd", "slurm-client")
BINARIES = ("/usr/sbin/munged", "/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/bin/sbatch")
DAEMONS = ("slurmd", "slurmctld", "munged")  # stop order
CONF = Path("/etc/slurm/slurm.conf")
MARKER = "# written by tests/integration/slurm_cluster.py"


class Unavailable(RuntimeError):
    """This machine cannot run the cluster (not root, no apt, packages not installable)."""


def _run(*cmd, timeout=300, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def install() -> None:
    """apt-get install the Debian packages if a binary is missing; Unavailable when that cannot work."""
    if os.geteuid() != 0:
        raise Unavailable("needs root to install and run slurmctld/slurmd/munged (run the test as root)")
    if all(Path(b).exists() for b in BINARIES):
        return
    if not shutil.which("apt-get"):
        raise Unavailable(f"{', '.join(PACKAGES)} not installed and no apt-get to install them")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ("apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES)
    proc = _run(*cmd, env=env)
    if proc.returncode != 0:  # package lists missing or stale: refresh once
        _run("apt-get", "update", "-q", env=env)
        proc = _run(*cmd, env=env)
    if proc.returncode != 0 or not all(Path(b).exists() for b in BINARIES):
        raise Unavailable(f"apt-get install {' '.join(PACKAGES)} failed: {(proc.stderr or proc.stdout)[-800:]}")


def _pid(name: str) -> int | None:
    """PID in ROOT/<name>.pid if that process is alive and is <name> (a recycled PID is left alone)."""
    try:
        pid = int((ROOT / f"{name}.pid").read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except (OSError, ValueError, IndexError):
        return None
    return pid if os.path.basename(cmdline.decode()) == name else None


def _alive(pid: int) -> bool:
    try:  # a zombie (nobody reaps daemons' children here) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def stop() -> list[str]:
    """Cancel leftover jobs, SIGTERM (then SIGKILL) the daemons whose PIDs are in ROOT's pid files,
    remove our slurm.conf; return what was stopped."""
    stopped = []
    if _pid("slurmctld") and _ours():
        _run("scancel", "--partition", PARTITION, timeout=30)
        end = time.monotonic() + 20  # let cancelled jobs finish while munged and slurmd still run
        while time.monotonic() < end and _run("squeue", "-h", "-p", PARTITION, timeout=10).stdout.strip():
            time.sleep(0.5)
    for name in DAEMONS:
        pid = _pid(name)
        if pid is None:
            continue
        os.kill(pid, signal.SIGTERM)
        end = time.monotonic() + 15  # the daemon deletes its pid file before it has exited: wait on the PID
        while _alive(pid) and time.monotonic() < end:
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        stopped.append(f"{name}[{pid}]")
    if _ours():
        CONF.unlink()
    return stopped


def _ours() -> bool:
    return CONF.exists() and CONF.read_text().startswith(MARKER)


def _conf(host: str) -> str:
    cpus = os.cpu_count() or 1
    mem_mb = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20 * 0.9)
    return f"""{MARKER}
ClusterName=redsm5test
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={ROOT}/jobcomp.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
ReturnToService=2
StateSaveLocation={ROOT}/state
SlurmdSpoolDir={ROOT}/spool
SlurmctldPidFile={ROOT}/slurmctld.pid
SlurmdPidFile={ROOT}/slurmd.pid
SlurmctldLogFile={ROOT}/slurmctld.log
SlurmdLogFile={ROOT}/slurmd.log
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem_mb} State=UNKNOWN
PartitionName={PARTITION} Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def _wait(what: str, predicate, timeout: float, log: Path | None = None) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.2)
    tail = log.read_text()[-1500:] if log and log.exists() else ""
    raise RuntimeError(f"SLURM test cluster: {what} not reached within {timeout:.0f} s\n{tail}")


def start() -> None:
    """Install if needed, stop stale daemons of an earlier run, wipe state, start munged, slurmctld,
    slurmd; wait until the node is idle."""
    install()
    if CONF.exists() and not _ours():
        raise Unavailable(f"{CONF} exists and was not written by this test: not overwriting a real cluster's config")
    stale = stop()
    for sub in ("state", "spool"):
        shutil.rmtree(ROOT / sub, ignore_errors=True)
        (ROOT / sub).mkdir(parents=True)
    for f in ("jobcomp.log", "slurmctld.log", "slurmd.log"):
        (ROOT / f).unlink(missing_ok=True)
    host = socket.gethostname().split(".")[0]
    CONF.parent.mkdir(parents=True, exist_ok=True)
    CONF.write_text(_conf(host))
    if stale:
        (ROOT / "stale.log").open("a").write(f"{time.ctime()}: stopped stale {' '.join(stale)}\n")

    run_dir = Path("/run/munge")
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.chown(run_dir, "munge", "munge")
    munge_pid = ROOT / "munged.pid"
    munge_pid.touch()
    shutil.chown(munge_pid, "munge", "munge")
    proc = _run("runuser", "-u", "munge", "--", "/usr/sbin/munged", "--force", f"--pid-file={munge_pid}", timeout=30)
    if proc.returncode != 0:
        raise RuntimeError(f"munged failed to start: {proc.stderr[-800:]}")
    for daemon in ("slurmctld", "slurmd"):
        proc = _run(f"/usr/sbin/{daemon}", timeout=30)
        if proc.returncode != 0:
            raise RuntimeError(f"{daemon} failed to start: {proc.stderr[-800:]}")

    def idle():
        return _run("sinfo", "-h", "-p", PARTITION, "-o", "%T", timeout=10).stdout.split() == ["idle"]

    _wait("node idle (sinfo)", idle, 60, ROOT / "slurmd.log")


def completed_jobs(times: bool = False) -> dict[str, str | dict]:
    """{SLURM job id: JobState} of every job the controller has finished (its job-completion log);
    with times, {job id: {SubmitTime, StartTime, EndTime}} instead."""
    out = {}
    log = ROOT / "jobcomp.log"
    for line in log.read_text().splitlines() if log.exists() else []:
        f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        out[f["JobId"]] = {k: f[k] for k in ("SubmitTime", "StartTime", "EndTime")} if times else f["JobState"]
    return out


if __name__ == "__main__":  # manual use: python tests/integration/slurm_cluster.py start|stop
    import sys

    if sys.argv[1:] == ["stop"]:
        print("stopped:", stop() or "nothing")
    else:
        t0 = time.perf_counter()
        start()
        print(f"cluster up in {time.perf_counter() - t0:.1f} s (config {CONF}, state and logs in {ROOT})")
