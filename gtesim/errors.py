"""The exceptions that end a run with one clear line (SPEC §7)."""


class GtesimError(Exception):
  """A condition the user must act on; entry points print the message without a traceback,
  add it to run.log, and exit with status 2."""


class InputError(GtesimError):
  """Bad user input: a file, column or config key, and what to do about it."""


class NumericalError(GtesimError):
  """A non-finite loss or outcome: the run stops, keeping its last good checkpoint."""


def require(ok, key, what):
  """Refuses a config value: `config key <key>: <what>`."""
  if not ok:
    raise InputError(f"config key {key}: {what}")
