"""A workdir belongs to one run: a lock against a second writer, no silent reuse of another
run's files, and checks that a resumed run is the same run (SPEC §6-§7)."""

import contextlib
import datetime
import errno
import fcntl
import json
import os
import pathlib
import secrets
import shutil

from gtesim.config import checks as config_checks
from gtesim.driver import parallel
from gtesim.errors import InputError, os_error_message

# What a run writes into its workdir (all of it is replaced by --overwrite).
RUN_FILES = ("config.json", "data.json", "pretrain.json", "encoding.json", "result.json",
             "steps.parquet", "metrics.parquet", "figure.png", "figure.svg", "run.log",
             "checkpoints", "tensorboard")
# Keys that may differ between a run and its resumption.
RESUMABLE_KEYS = ("sim.n_steps", "checkpoint_every")


def default(name: str, results=pathlib.Path("results")) -> pathlib.Path:
  """results/<name>-<YYYYmmdd-HHMMSS>-<6 hex digits>, created by this call: runs started in
  the same second (array tasks, a shell loop) get folders of their own. Every process of a
  multi-process run gets process 0's folder."""
  path = None
  if parallel.is_primary():
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    while path is None:
      path = results / f"{name}-{stamp}-{secrets.token_hex(3)}"
      try:
        path.mkdir(parents=True)
      except FileExistsError:
        path = None
      except OSError as err:
        raise InputError(os_error_message(err, "the default workdir: creating") +
                         "; choose a --workdir you can write.") from None
  return pathlib.Path(parallel.from_primary(str(path)))


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

  An exclusive holder removes the file when it leaves (a finished run leaves no `.lock`
  behind); so a process that locked a file which is no longer the one at the path (removed
  by its holder meanwhile) lets it go and locks the new one.

  flock works across the nodes of a cluster on NFS (emulated with fcntl locks) and on Lustre
  mounted with `flock`; on a file system without it the lock holds only within one node."""
  path = workdir / ".lock"
  while True:
    try:
      fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as err:
      raise InputError(os_error_message(err, f"locking the {what} folder: opening") +
                       f"; choose a {option} you can write.") from None
    try:
      fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except OSError as err:
      held_by = os.pread(fd, 512, 0).decode(errors="replace").strip() or "another process"
      os.close(fd)
      if err.errno not in (errno.EAGAIN, errno.EACCES):
        raise
      raise InputError(f"{workdir} is in use by another {what} ({held_by}); wait for it to "
                       f"finish or choose another {option}.") from None
    try:
      current = os.stat(path).st_ino
    except FileNotFoundError:
      current = None
    if current == os.fstat(fd).st_ino:
      break
    os.close(fd)  # Removed by its last holder after we opened it: lock the new file.
  try:
    text = f"pid {os.getpid()} on {os.uname().nodename}" + (f": {holder}" if holder else "")
    os.ftruncate(fd, 0)  # Shared holders overwrite each other: the text names one of them.
    os.pwrite(fd, text.encode(), 0)
    yield
  finally:
    if not shared:
      with contextlib.suppress(OSError):
        os.unlink(path)  # Still held: no one can lock this file in between.
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


def check_resume(config, workdir: pathlib.Path) -> None:
  """The resumed run has the saved run's config (n_steps may grow)."""
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


def finished(config, workdir: pathlib.Path):
  """result.json's content when the run in `workdir` already finished config's sim.n_steps
  (a resume has nothing to do), else None."""
  path = workdir / "result.json"
  if not path.exists():
    return None
  try:
    result = json.loads(path.read_text())
  except (OSError, ValueError):
    return None  # A damaged result is rewritten by the resumed run.
  return result if result.get("n_steps") == config.sim.n_steps else None


def check_resume_data(workdir: pathlib.Path, fingerprint: str) -> None:
  """The resumed run reads the same data as the saved run."""
  data = workdir / "data.json"
  before = json.loads(data.read_text()).get("fingerprint") if data.exists() else None
  if before != fingerprint:
    raise InputError(f"--resume: the data files changed since the run in {workdir} started "
                     f"(fingerprint {before} then, {fingerprint} now); resuming would mix two "
                     "datasets. Restore the files or start a new run.")
