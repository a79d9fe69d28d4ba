"""Runs a study: the global truth and the A/B designs, then its report.

  python scripts/study.py --config configs/study.py [--config.KEY=VALUE ...] [--out DIR]

In one process by default; as a job graph (scripts/slurm/study.sh) by stages:
  --stage=pretrain, then --stage=job --job=NAME|INDEX for each of --list_jobs, then
  --stage=report, every one with the same config, overrides and --out.
"""

import pathlib
import shlex
import sys

from absl import flags
from ml_collections import config_flags

from gtesim import cli
from gtesim import logs
from gtesim.driver import stopping
from gtesim.driver import workdir as workdir_lib
from gtesim.study import execute as study

_CONFIG = config_flags.DEFINE_config_file("config", None, "Study config file.",
                                          lock_config=True)
_OUT = flags.DEFINE_string("out", None, "Output folder; default experiments/<study.name>.")
_STAGE = flags.DEFINE_enum("stage", "all", study.STAGES,
                           "all: the whole study in this process; pretrain, job, report: one "
                           "stage of its job graph.")
_JOB = flags.DEFINE_string("job", None, "Stage job: the job to run, by name or index.")
_LIST = flags.DEFINE_bool("list_jobs", False, "Print the study's job names, one per line, "
                          "and exit (nothing is written).")
flags.mark_flags_as_required(["config"])


def main(argv):
  del argv
  config = _CONFIG.value
  if _LIST.value:
    print("\n".join(study.job_names(config)))
    return
  out = pathlib.Path(_OUT.value or pathlib.Path("experiments") / config.study.name)
  workdir_lib.make(out)
  if _STAGE.value == "job" and _JOB.value is not None:
    names = study.job_names(config)
    name = names[int(_JOB.value)] if _JOB.value.isdigit() and int(_JOB.value) < len(
        names) else _JOB.value
    (out / "logs").mkdir(exist_ok=True)
    logs.setup(out / "logs" / f"job-{name}.log")
  else:
    logs.setup(out / "study.log")
  # The report names the one-process command, which regenerates the same study.
  command, skip = [], False
  for arg in sys.argv:
    if not skip and not arg.startswith(("--stage", "--job")):
      command.append(arg)
    skip = arg in ("--stage", "--job")
  with stopping.StopRequests() as stop:
    study.run(config, out, "python " + shlex.join(command), stage=_STAGE.value,
              job=_JOB.value, stop=stop)


if __name__ == "__main__":
  cli.run(main, tag="study", resume="run the same command again to resume")
