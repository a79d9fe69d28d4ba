"""The main job: runs the configured mode and writes results to the workdir.

  python scripts/run.py --config configs/global.py [--config.KEY=VALUE ...] [--workdir DIR]
  python scripts/run.py --config configs/global.py --workdir DIR --resume
  python scripts/run.py --config configs/global.py --workdir DIR --overwrite
"""

import pathlib

from absl import flags
from ml_collections import config_flags

from gtesim import cli
from gtesim.driver import parallel
from gtesim.driver import simulate
from gtesim.driver import workdir as workdir_lib

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None,
                               "Output folder; default results/<config>-<timestamp>-<6 hex digits>.")
_RESUME = flags.DEFINE_bool("resume", False, "Continue the run in --workdir from its last "
                            "checkpoint up to the config's sim.n_steps.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace the run already in --workdir.")
flags.mark_flags_as_required(["config"])


def main(argv):
  del argv
  parallel.initialize(_CONFIG.value.join_timeout_s)
  workdir = _WORKDIR.value
  if workdir is None:
    if _RESUME.value:
      raise cli.InputError("--resume needs --workdir, the folder of the run to continue.")
    file, _, arg = flags.FLAGS["config"].config_filename.partition(":")
    workdir = workdir_lib.default(pathlib.Path(file).stem + (f"-{arg}" if arg else ""))
  simulate.run(_CONFIG.value, workdir, resume=_RESUME.value, overwrite=_OVERWRITE.value)


if __name__ == "__main__":
  cli.run(main, tag="run")
