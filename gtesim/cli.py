"""Entry-point plumbing: absl flags with an ml_collections config, and clean exits.

Bad input (a config file that is missing, does not parse or fails, an unknown config key, a
bad flag value, a GtesimError raised anywhere) and a refused write or read (an OSError: disk
full, quota, file-size limit, permissions; the line names the file and the errno) print one
`[module] error: ...` line, add it to run.log when there is one, and exit with status 2, no
traceback. A run stopped by SIGTERM / SIGINT (driver/stopping.py) prints
`[run] stopped by SIGTERM at step k ...; resume with --resume` and exits with status 75.
"""

import difflib
import pathlib
import runpy
import sys
import traceback

from absl import app
from absl import flags

from gtesim import logs
from gtesim.driver import stopping
from gtesim.errors import GtesimError, InputError  # InputError re-exported for scripts.
from gtesim.errors import os_error_message

__all__ = ["InputError", "run"]


def _config_file(argv):
  for i, arg in enumerate(argv):
    if arg.startswith("--config="):
      return arg.split("=", 1)[1].split(":", 1)[0]
    if arg == "--config" and i + 1 < len(argv):
      return argv[i + 1].split(":", 1)[0]
  return None


def _load_config_file(path: str):
  """The file's get_config(), or one clear error naming the file and line."""
  if not pathlib.Path(path).is_file():
    raise InputError(f"config file '{path}' does not exist (run from the repository root, "
                     "e.g. --config configs/global.py).")
  try:
    return runpy.run_path(path)["get_config"]()
  except SyntaxError as err:
    raise InputError(f"{path}, line {err.lineno}: syntax error: {err.msg}.") from None
  except KeyError:
    raise InputError(f"{path} defines no get_config() function.") from None
  except Exception as err:  # pylint: disable=broad-except
    frames = [f for f in traceback.extract_tb(err.__traceback__)
              if pathlib.Path(f.filename).resolve() == pathlib.Path(path).resolve()]
    where = f", line {frames[-1].lineno}" if frames else ""
    raise InputError(f"{path}{where}: {type(err).__name__}: {err}") from None


def _missing_key(config, argv):
  """The first `--config.KEY` override whose KEY is not in the config, with a suggestion."""
  for arg in argv:
    if not arg.startswith("--config."):
      continue
    node, walked = config, []
    for part in arg[len("--config."):].split("=", 1)[0].split("."):
      keys = list(node.keys()) if hasattr(node, "keys") else []
      if part not in keys:
        close = difflib.get_close_matches(part, keys, n=1)
        moved = _moved(node, walked, part)
        hint = (f" (it moved: '{moved}')" if moved else
                f" (did you mean '{'.'.join(walked + close)}'?)" if close else "")
        return f"config key '{'.'.join(walked + [part])}' does not exist{hint}"
      node, walked = node[part], walked + [part]
  return None


def _moved(node, walked, part):
  """Where a key of the flat layout before the config sections went: the subsection of
  `node` that holds `part` (labels.click.hidden -> labels.click.mlp.hidden), or a design's
  key (experiment.switch_every -> experiment.switchback.every)."""
  from gtesim.config import checks  # pylint: disable=g-import-not-at-top
  renamed = checks.MOVED_KEYS.get(".".join(walked + [part]))
  if renamed:
    return renamed
  keys = list(node.keys()) if hasattr(node, "keys") else []
  if part.startswith("id_") and "ids" in keys and part[3:] in node["ids"].keys():
    return ".".join(walked + ["ids", part[3:]])
  subs = [k for k in keys if hasattr(node[k], "keys") and part in node[k].keys()]
  return " or ".join(".".join(walked + [k, part]) for k in subs)


def _repeated_tuple(config, argv):
  """A tuple-valued `--config.KEY` given twice: ml_collections would join the two tuples
  (`(16,)` then `(8,)` gives `(16, 8)`), silently. A number or string takes the last value."""
  seen = set()
  for arg in argv:
    if not arg.startswith("--config."):
      continue
    key = arg[len("--config."):].split("=", 1)[0]
    *path, last = key.split(".")
    node = config
    for part in path:
      node = node[part] if hasattr(node, "keys") and part in node.keys() else None
    is_tuple = (hasattr(node, "keys") and last in node.keys() and
                (isinstance(node[last], tuple) or node.get_type(last) is tuple))
    if is_tuple and key in seen:
      return (f"config key {key} is given twice: ml_collections would join the two tuples; "
              "give it once")
    seen.add(key)
  return None


def _fail(tag, message, status=2, kind="error: "):
  line = f"[{tag}] {kind}{message}"
  sys.stderr.write(line + "\n")
  logs.to_files(line)
  sys.exit(status)


def _parse(argv):
  path = _config_file(argv)
  config = None
  if path is not None:
    try:
      config = _load_config_file(path)
    except InputError as err:
      _fail("config", str(err))
    repeated = _repeated_tuple(config, argv)
    if repeated:
      _fail("config", repeated)
  try:
    return flags.FLAGS(argv)
  except flags.Error as err:
    _fail("config", (config is not None and _missing_key(config, argv)) or str(err))
  except (AttributeError, KeyError, TypeError, ValueError) as err:
    _fail("config", (config is not None and _missing_key(config, argv)) or
          f"bad config override: {err}")


def run(main, tag="run", resume=None):
  """app.run(main) where bad input ends in one clear line and exit status 2; a stop on a
  signal ends in its line and status 75, saying how to resume: `resume` where the entry point
  resumes otherwise than a single run's `--resume` (a study, the advisor: run it again)."""
  def guarded(argv):
    try:
      main(argv)
    except stopping.Stopped as err:
      _fail(tag, f"{err.where}; {resume}" if resume else str(err), status=err.status, kind="")
    except GtesimError as err:
      _fail(tag, str(err))
    except OSError as err:  # A write (or read) the system refused: disk, quota, permissions.
      _fail(tag, os_error_message(err, "writing or reading") +
            "; the last good checkpoint is kept: fix the cause, then "
            f"{resume or 'resume with --resume'}.")
  app.run(guarded, flags_parser=_parse)
