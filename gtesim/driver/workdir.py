"""A workdir belongs to one run: a lock against a second writer, no silent reuse of another
run's files, and checks that a resumed run is the same run (SPEC §6-§7)."""

import contextlib
import errno
import fcntl
import json
import os
import pathlib
import shutil

from gtesim.config import checks as config_checks
from gtesim.errors import InputError, os_error_message

# What a run writes into its workdir (all of it is replaced by --overwrite).
RUN_FILES = ("config.json", "data.json", "pretrain.json", "encoding.json", "result.json",
             "steps.parquet", "metrics.parquet", "figure.png", "figure.svg", "run.log",
             "checkpoints", "tensorboard")
# Keys that may differ between a run and its resumption.
RESUMABLE_KEYS = ("sim.n_steps", "checkpoint_every")


def make(workdir: pathlib.Path) -> None:
  """Creates the workdir, or one clear line why not (permissions, a file in the way)."""
  try:
    workdir.mkdir(parents=True, exist_ok=True)
    probe = workdir / f".write-test-{os.getpid()}"
    probe.touch()
    probe.unlink()
  except OSError as err:
    raise InputError(os_error_message(err, "the workdir: creating or writing") +
                     "; choose a --workdir you can write.") from None


@contextlib.contextmanager
def lock(workdir: pathlib.Path, shared: bool = False, holder: str = "", what: str = "run",
         option: str = "--workdir"):
  """Holds a lock on `workdir/.lock` for the block: exclusive (a second holder is refused,
  named from what the first wrote into the file), or `shared` with other shared holders (the
  jobs of one study graph) and exclusive against the rest. `holder` describes this process.

  flock works across the nodes of a cluster on NFS (emulated with fcntl locks) and on Lustre
  mounted with `flock`; on a file system without it the lock holds only within one node."""
  path = workdir / ".lock"
  try:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
  except OSError as err:
    raise InputError(os_error_message(err, f"locking the {what} folder: opening") +
                     f"; choose a {option} you can write.") from None
  try:
    try:
      fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except OSError as err:
      if err.errno not in (errno.EAGAIN, errno.EACCES):
        raise
      held_by = os.pread(fd, 512, 0).decode(errors="replace").strip() or "another process"
      raise InputError(f"{workdir} is in use by another {what} ({held_by}); wait for it to "
                       f"finish or choose another {option}.") from None
    text = f"pid {os.getpid()} on {os.uname().nodename}" + (f": {holder}" if holder else "")
    os.ftruncate(fd, 0)  # Shared holders overwrite each other: the text names one of them.
    os.pwrite(fd, text.encode(), 0)
    yield
  finally:
    os.close(fd)


def prepare(workdir: pathlib.Path, resume: bool, overwrite: bool) -> None:
  """Refuses a workdir holding another run unless resuming it or told to overwrite it."""
  present = [name for name in RUN_FILES if (workdir / name).exists()]
  if present == ["run.log"] and not resume:
    return  # A run refused before it wrote anything: run.log gets the next attempt too.
  if resume:
    if overwrite:
      raise InputError("--resume and --overwrite contradict each other; pass one.")
    if "config.json" not in present:
      raise InputError(f"--resume: {workdir} holds no run (no config.json).")
    return
  if present and not overwrite:
    raise InputError(f"workdir {workdir} already holds a run ({', '.join(present[:4])}...); "
                     "pass --resume to continue it, --overwrite to replace it, or choose "
                     "another --workdir.")
  for name in present:
    target = workdir / name
    shutil.rmtree(target) if target.is_dir() else target.unlink()


def check_resume(config, workdir: pathlib.Path, fingerprint: str) -> None:
  """The resumed run has the saved run's config (n_steps may grow) and the same data."""
  saved = json.loads((workdir / "config.json").read_text())
  diff = config_checks.first_difference(saved, json.loads(config.to_json_best_effort()),
                                       RESUMABLE_KEYS)
  if diff:
    key, before, now = diff
    raise InputError(f"--resume: config key {key} is {now!r} but the run in {workdir} used "
                     f"{before!r}; resume with the same config (only "
                     f"{', '.join(RESUMABLE_KEYS)} may change).")
  if config.sim.n_steps < saved["sim"]["n_steps"]:
    raise InputError(f"--resume: config key sim.n_steps is {config.sim.n_steps}, fewer than "
                     f"the {saved['sim']['n_steps']} of the run in {workdir}; a run can only "
                     "be extended.")
  data = workdir / "data.json"
  before = json.loads(data.read_text()).get("fingerprint") if data.exists() else None
  if before != fingerprint:
    raise InputError(f"--resume: the data files changed since the run in {workdir} started "
                     f"(fingerprint {before} then, {fingerprint} now); resuming would mix two "
                     "datasets. Restore the files or start a new run.")
