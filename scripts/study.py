"""Runs a study: the global truth and the A/B designs, then its report.

  python scripts/study.py --config configs/study.py [--config.KEY=VALUE ...] [--out DIR]
"""

import pathlib
import shlex
import sys

from absl import flags
from ml_collections import config_flags

from gtesim import cli
from gtesim import logs
from gtesim.study import execute as study

_CONFIG = config_flags.DEFINE_config_file("config", None, "Study config file.",
                                          lock_config=True)
_OUT = flags.DEFINE_string("out", None, "Output folder; default experiments/<study.name>.")
flags.mark_flags_as_required(["config"])


def main(argv):
  del argv
  config = _CONFIG.value
  out = pathlib.Path(_OUT.value or pathlib.Path("experiments") / config.study.name)
  out.mkdir(parents=True, exist_ok=True)
  logs.setup(out / "study.log")
  study.run(config, out, "python " + shlex.join(sys.argv))


if __name__ == "__main__":
  cli.run(main, tag="study")
