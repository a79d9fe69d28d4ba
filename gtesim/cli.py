"""Entry-point plumbing: absl flags with an ml_collections config, and clean bad-input exits.

Bad input (an unknown config key, a bad flag value, an InputError raised anywhere before or
during the run) prints one `[module] error: ...` line and exits with status 2, no traceback.
"""

import difflib
import runpy
import sys

from absl import app
from absl import flags

from gtesim.errors import InputError  # Re-exported for scripts.



def _config_file(argv):
  for i, arg in enumerate(argv):
    if arg.startswith("--config="):
      return arg.split("=", 1)[1]
    if arg == "--config" and i + 1 < len(argv):
      return argv[i + 1]
  return None


def _missing_key(argv):
  """The first `--config.KEY` override whose KEY is not in the config, with a suggestion."""
  path = _config_file(argv)
  if path is None:
    return None
  try:
    config = runpy.run_path(path.split(":", 1)[0])["get_config"]()
  except Exception:  # pylint: disable=broad-except
    return None
  for arg in argv:
    if not arg.startswith("--config."):
      continue
    node, walked = config, []
    for part in arg[len("--config."):].split("=", 1)[0].split("."):
      keys = list(node.keys()) if hasattr(node, "keys") else []
      if part not in keys:
        close = difflib.get_close_matches(part, keys, n=1)
        hint = f" (did you mean '{'.'.join(walked + close)}'?)" if close else ""
        return f"config key '{'.'.join(walked + [part])}' does not exist{hint}"
      node, walked = node[part], walked + [part]
  return None


def _fail(tag, message):
  sys.stderr.write(f"[{tag}] error: {message}\n")
  sys.exit(2)


def _parse(argv):
  try:
    return flags.FLAGS(argv)
  except flags.Error as err:
    _fail("config", str(err))
  except (AttributeError, KeyError, TypeError, ValueError) as err:
    _fail("config", _missing_key(argv) or f"bad config override: {err}")


def run(main, tag="run"):
  """app.run(main) where bad input ends in one clear line and exit status 2."""
  def guarded(argv):
    try:
      main(argv)
    except InputError as err:
      _fail(tag, str(err))
  app.run(guarded, flags_parser=_parse)
