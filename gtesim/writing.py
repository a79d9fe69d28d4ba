"""Writing results: atomically (a file appears whole or not at all, SPEC §7), JSON-safe.

The content goes to a temporary file beside the target, is flushed to disk (fsync), gets the
permissions a plain `open()` would give it (0666 minus the user's umask, so results and caches
can be shared), and is renamed onto the target.
"""

import contextlib
import fcntl
import json
import math
import os
import pathlib
import tempfile

import numpy as np

from gtesim.errors import WriteError, os_error_message


def _umask() -> int:
  mask = os.umask(0)
  os.umask(mask)
  return mask


@contextlib.contextmanager
def atomic_path(path):
  """Yields a temporary path beside `path`; renames it onto `path` if the block succeeds.

  A write the system refuses (disk full, quota, file-size limit, permissions) is a
  WriteError naming `path` and the errno; the old `path`, if any, is left as it was."""
  path = pathlib.Path(path)
  tmp = None
  try:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    yield pathlib.Path(tmp)
    with open(tmp, "rb+") as f:
      os.fsync(f.fileno())
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)
  except OSError as err:
    raise WriteError(os_error_message(err, "writing", path)) from None
  finally:
    if tmp is not None and os.path.exists(tmp):
      os.unlink(tmp)


@contextlib.contextmanager
def build_lock(path, what: str, log=None):
  """Holds an exclusive flock on `path` for the block, waiting for another holder (a process
  building the same data folder or cache): the first builds, the others then find it built.
  (flock: local disks and NFS; on Lustre mount with `flock`.)"""
  path = pathlib.Path(path)
  try:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
  except OSError as err:
    raise WriteError(os_error_message(err, f"locking {what}: opening", path)) from None
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      if log is not None:
        log.info("waiting for another process building %s", what)
      fcntl.flock(fd, fcntl.LOCK_EX)
    yield
  finally:
    os.close(fd)


def write_json(path, obj, indent=1) -> None:
  """Writes `obj` as JSON (indented, or compact with indent=None), atomically."""
  with atomic_path(path) as tmp:
    tmp.write_text(json.dumps(obj, indent=indent, allow_nan=False,
                              separators=None if indent else (",", ":")) + "\n")


def jsonable(obj, digits: int = 0):
  """obj with NaN/inf floats as None (JSON null) and numpy scalars as Python numbers; floats
  rounded to `digits` significant digits when digits > 0."""
  if isinstance(obj, dict):
    return {k: jsonable(v, digits) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [jsonable(v, digits) for v in obj]
  if isinstance(obj, np.ndarray):
    return jsonable(obj.tolist(), digits)
  if isinstance(obj, (float, np.floating)):
    if not math.isfinite(obj):
      return None
    return float(f"{obj:.{digits}g}") if digits else float(obj)
  if isinstance(obj, np.integer):
    return int(obj)
  return obj
