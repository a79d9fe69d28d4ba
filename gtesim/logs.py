"""Logging where every line is tagged `[module]`, to the terminal and optionally `run.log`."""

import logging
import sys

from absl import logging as absl_logging

_ROOT = "gtesim"
_FORMAT = "%(asctime)s [%(tag)s] %(message)s"
_DATEFMT = "%H:%M:%S"
# JAX's "Unable to initialize backend 'tpu'" (INFO) would open every run on a machine without
# one; it is logged when the backends start, which may precede setup().
logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)


class _TagFilter(logging.Filter):

  def filter(self, record):
    name = record.name
    record.tag = name.split(".", 1)[1] if name.startswith(_ROOT + ".") else name
    return True


def get_logger(tag: str) -> logging.Logger:
  """Returns the logger whose lines are tagged `[tag]`."""
  return logging.getLogger(f"{_ROOT}.{tag}")


def setup(log_file=None, level=logging.INFO) -> None:
  """Sends tagged lines to stderr and, if given, appends them to `log_file`.

  Libraries' own INFO chatter (orbax, absl) is silenced to warnings.
  """
  absl_logging.set_verbosity(absl_logging.WARNING)
  root = logging.getLogger(_ROOT)
  root.setLevel(level)
  root.propagate = False
  for handler in list(root.handlers):
    root.removeHandler(handler)
    handler.close()
  handlers = [logging.StreamHandler(sys.stderr)]
  if log_file is not None:
    handlers.append(logging.FileHandler(log_file, mode="a"))
  for handler in handlers:
    handler.setFormatter(logging.Formatter(_FORMAT, _DATEFMT))
    handler.addFilter(_TagFilter())
    root.addHandler(handler)


def to_files(line: str) -> None:
  """Appends a line as it is to every log file the tagged loggers write (e.g. run.log)."""
  for handler in logging.getLogger(_ROOT).handlers:
    if isinstance(handler, logging.FileHandler):
      try:
        handler.stream.write(line + "\n")
        handler.flush()
      except OSError:  # The line still reaches stderr (a full disk or a size limit).
        pass
