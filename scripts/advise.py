"""The advisor: which (design, estimator) a team should run on its own setting.

  python scripts/advise.py --config configs/advise.py [--config.KEY=VALUE ...] --out DIR

Runs the smallest study that decides (gtesim/study/advise.py): batches of repetitions until
the lowest-RMSE (design, estimator) is shown the lowest of all, or no other cell is shown
lower by more than advise.margin of the true GTE (a simultaneous bound), or advise.budget_s or
advise.max_batches runs out. Prints the verdict in words and, as its last
line, one JSON object (design, estimator, se_method, inflation, inflation_ci, bias_pct,
bias_pct_ci, rmse, power, wrong_sign, decided, B, cost_s, study_dir). Run it again with the
same arguments to resume.
"""

import json
import pathlib
import shlex
import sys

from absl import flags
from ml_collections import config_flags

from gtesim import cli
from gtesim import logs
from gtesim.driver import stopping
from gtesim.driver import workdir as workdir_lib
from gtesim.study import advise

_CONFIG = config_flags.DEFINE_config_file("config", None, "Advisor config file.",
                                          lock_config=True)
_OUT = flags.DEFINE_string("out", None, "Output folder (the batches' studies, advise.json).")
flags.mark_flags_as_required(["config", "out"])


def main(argv):
  del argv
  out = pathlib.Path(_OUT.value)
  workdir_lib.make(out)
  logs.setup(out / "advise.log")
  with stopping.StopRequests() as stop:
    state = advise.run(_CONFIG.value, out, "python " + shlex.join(sys.argv), stop=stop)
  print(state["words"])
  print(json.dumps(state["verdict"]))


if __name__ == "__main__":
  cli.run(main, tag="advise", resume="run the same command again to resume")
