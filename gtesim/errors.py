"""The one exception type for bad input (SPEC §7)."""


class InputError(Exception):
  """Bad user input: a file, column or config key, and what to do about it.

  Entry points catch it, print the message without a traceback and exit with status 2.
  """
