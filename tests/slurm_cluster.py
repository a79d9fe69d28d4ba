"""A real single-node SLURM for the tests: munged, slurmctld and slurmd from the distribution's
packages (Debian: slurmctld slurmd slurm-client munge), started by hand in a private folder
with free ports, and stopped at the end. Client commands reach it through SLURM_CONF."""

import os
import pathlib
import re
import shutil
import socket
import subprocess
import tempfile
import time

_DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "scontrol", "sinfo", "scancel")
FINISHED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
            "BOOT_FAIL", "DEADLINE", "PREEMPTED")


REPO = pathlib.Path(__file__).resolve().parents[1]


def unavailable() -> str:
  """Why the SLURM tests cannot run here ('' when they can)."""
  missing = [d for d in _DAEMONS if shutil.which(d) is None]
  if missing:
    return (f"SLURM is not installed ({', '.join(missing)} missing): apt-get install "
            "slurmctld slurmd slurm-client munge")
  if os.geteuid() != 0:
    return "slurmd must run as root to start jobs (SlurmdUser=root); run the tests as root"
  if not (REPO / ".venv" / "bin" / "python").exists():
    return "the SLURM scripts run .venv/bin/python: run `make install` first"
  return ""


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _node_line() -> str:
  """`slurmd -C`'s node line (CPUs, RealMemory of this machine), addressed at 127.0.0.1."""
  out = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout
  line = next(l for l in out.splitlines() if l.startswith("NodeName="))
  return line + " NodeAddr=127.0.0.1 State=UNKNOWN"


class Cluster:
  """One controller and one node; `env` is what client commands need."""

  def __init__(self):
    self.dir = pathlib.Path(tempfile.mkdtemp(prefix="gs-", dir="/tmp"))  # Short socket paths.
    d = self.dir
    for sub in ("munge", "state", "spool", "log"):
      (d / sub).mkdir()
    os.chmod(d, 0o755)
    os.chmod(d / "munge", 0o755)  # munged refuses a socket folder others can write.
    key = d / "munge" / "key"
    key.write_bytes(os.urandom(128))
    os.chmod(key, 0o600)
    self.node = re.search(r"NodeName=(\S+)", _node_line()).group(1)
    conf = {
        "ClusterName": "gtesimtest", "SlurmctldHost": f"{self.node}(127.0.0.1)",
        "SlurmUser": "root", "SlurmdUser": "root",
        "AuthType": "auth/munge", "CredType": "cred/munge",
        "AuthInfo": f"socket={d}/munge/sock",
        "StateSaveLocation": f"{d}/state", "SlurmdSpoolDir": f"{d}/spool",
        "SlurmctldPidFile": f"{d}/slurmctld.pid", "SlurmdPidFile": f"{d}/slurmd.pid",
        "SlurmctldLogFile": f"{d}/log/slurmctld.log", "SlurmdLogFile": f"{d}/log/slurmd.log",
        "SlurmctldPort": _free_port(), "SlurmdPort": _free_port(),
        "ProctrackType": "proctrack/linuxproc", "TaskPlugin": "task/none",
        "JobAcctGatherType": "jobacct_gather/none",
        "AccountingStorageType": "accounting_storage/none",
        "SelectType": "select/cons_tres", "SelectTypeParameters": "CR_Core_Memory",
        "DependencyParameters": "kill_invalid_depend", "ReturnToService": 2,
        "MpiDefault": "none", "SchedulerType": "sched/backfill", "KillWait": 30,
        "MinJobAge": 3600,  # Finished jobs stay visible to scontrol for the whole session.
    }
    lines = [f"{k}={v}" for k, v in conf.items()]
    lines += [_node_line(),
              f"PartitionName=debug Nodes={self.node} Default=YES MaxTime=INFINITE State=UP"]
    (d / "slurm.conf").write_text("\n".join(lines) + "\n")
    self.env = {**os.environ, "SLURM_CONF": str(d / "slurm.conf")}
    for name in list(self.env):  # Never inherit an outer job's allocation.
      if name.startswith(("SLURM_", "SBATCH_", "SRUN_")) and name != "SLURM_CONF":
        del self.env[name]
    try:
      self._start()
    except subprocess.CalledProcessError:
      self.stop()
      raise

  def _start(self):
    d = self.dir
    subprocess.run(["munged", "--force", f"--key-file={d}/munge/key",
                    f"--socket={d}/munge/sock", f"--pid-file={d}/munge/pid",
                    f"--log-file={d}/munge/log", f"--seed-file={d}/munge/seed"], check=True)
    subprocess.run(["slurmctld", "-c", "-f", str(d / "slurm.conf")], check=True, env=self.env)
    subprocess.run(["slurmd", "-f", str(d / "slurm.conf")], check=True, env=self.env)
    deadline = time.time() + 60
    while time.time() < deadline:
      out = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True,
                           env=self.env)
      if out.returncode == 0 and out.stdout.strip() == "idle":
        return
      time.sleep(0.5)
    self.stop()
    raise RuntimeError(f"the test SLURM did not come up: {self.logs()}")

  def logs(self) -> str:
    return "\n".join(f"--- {p.name}\n" + p.read_text()[-3000:]
                     for p in sorted((self.dir / "log").glob("*.log")))

  def command(self, *args, check=True, cwd=None, env=None) -> str:
    out = subprocess.run(list(args), capture_output=True, text=True, cwd=cwd,
                         env={**self.env, **(env or {})})
    if check and out.returncode != 0:
      raise AssertionError(f"{' '.join(args)} failed ({out.returncode}): {out.stderr}")
    return out.stdout

  def sbatch(self, *args, cwd=None, env=None) -> str:
    """Submits; returns the job id."""
    return self.command("sbatch", "--parsable", *args, cwd=cwd, env=env).strip().split(";")[0]

  def jobs(self, job_id: str) -> dict:
    """{job id (array tasks as <job>_<task>): its fields} from `scontrol show job`."""
    out = self.command("scontrol", "-o", "show", "job", job_id, check=False)
    jobs = {}
    for line in out.splitlines():
      fields = dict(re.findall(r"(\w+)=(\S*)", line))
      if "JobId" in fields:
        task = fields.get("ArrayTaskId")
        name = (f"{fields['ArrayJobId']}_{task}" if task and "ArrayJobId" in fields
                else fields["JobId"])
        jobs[name] = fields
    return jobs

  def wait(self, job_id: str, timeout: float, release_requeued=True) -> dict:
    """Waits until every job (every array task) of `job_id` has finished: {id: state}. A
    requeued job waits ~2 min (BeginTime) before it restarts; it is released at once."""
    deadline = time.time() + timeout
    while True:
      jobs = self.jobs(job_id)
      for name, fields in jobs.items():
        if (release_requeued and fields["JobState"] == "PENDING" and
            fields.get("Reason") == "BeginTime"):
          self.command("scontrol", "update", f"JobId={fields['JobId']}", "StartTime=now",
                       check=False)
      states = {name: f["JobState"] for name, f in jobs.items()}
      if states and all(s in FINISHED for s in states.values()):
        return states
      if time.time() > deadline:
        raise AssertionError(f"job {job_id} not finished after {timeout:.0f} s: {states}\n"
                             f"{self.logs()}")
      time.sleep(1.0)

  def stop(self):
    self.command("scancel", "--full", "-u", "root", check=False)
    for pid_file in ("slurmd.pid", "slurmctld.pid", "munge/pid"):
      path = self.dir / pid_file
      if path.exists():
        try:
          os.kill(int(path.read_text().strip()), 15)
        except (ValueError, ProcessLookupError):
          pass
    time.sleep(0.5)
    shutil.rmtree(self.dir, ignore_errors=True)
