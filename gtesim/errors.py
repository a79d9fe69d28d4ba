"""The exceptions that end a run with one clear line (SPEC §7)."""

import errno
import os
import re


class GtesimError(Exception):
  """A condition the user must act on; entry points print the message without a traceback,
  add it to run.log, and exit with status 2."""


class InputError(GtesimError):
  """Bad user input: a file, column or config key, and what to do about it."""


class WriteError(GtesimError):
  """A file could not be written (disk full, quota, file-size limit, permissions): the line
  names the file and the errno; the last good checkpoint is kept."""


def one_line(text, limit: int) -> str:
  """`text` with its whitespace runs as single spaces, cut to `limit` characters."""
  return " ".join(str(text).split())[:limit]


def errno_of(err: Exception):
  """The errno of an OSError, or of a library's error that only quotes it (pyarrow's
  "[errno 27]", tensorstore's "[os_error_code='27']"); None if there is none."""
  if isinstance(err, OSError) and err.errno:
    return err.errno
  found = re.search(r"errno (\d+)\]|os_error_code='(\d+)'", str(err))
  return int(found.group(1) or found.group(2)) if found else None


def os_error_message(err: Exception, doing: str, path=None) -> str:
  """One line of a failed read or write: what was being done, the file, the reason and the
  errno name."""
  code = errno_of(err)
  path = path or getattr(err, "filename", None)
  where = f" {path}" if path else ""
  if code is None:
    return f"{doing}{where} failed: {one_line(err, 200)}"
  return f"{doing}{where} failed: {os.strerror(code)} ({errno.errorcode.get(code, code)})"


class NumericalError(GtesimError):
  """A non-finite loss or outcome: the run stops, keeping its last good checkpoint."""


def require(ok, key, what):
  """Refuses a config value: `config key <key>: <what>`."""
  if not ok:
    raise InputError(f"config key {key}: {what}")
