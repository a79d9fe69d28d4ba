"""Merges the run folders of a split run (SLURM array tasks) into one run's outputs.

  python scripts/merge.py RUN_DIR [RUN_DIR ...] --out DIR [--overwrite]
"""

from absl import flags

from gtesim import cli
from gtesim import logs
from gtesim.study import merge

_OUT = flags.DEFINE_string("out", None, "Folder for the merged result.json and tables.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace a run already in --out.")
flags.mark_flags_as_required(["out"])


def main(argv):
  logs.setup()
  merged = merge.merge(argv[1:], _OUT.value, overwrite=_OVERWRITE.value)
  logs.get_logger("merge").info("merged %d repetitions into %s", merged["repetitions"],
                                _OUT.value)


if __name__ == "__main__":
  cli.run(main, tag="merge")
