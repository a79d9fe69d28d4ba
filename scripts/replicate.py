"""One configuration of the Brennan–Holtz choice world: the design's B runs and both truths.

  python scripts/replicate.py --config configs/replication.py [--config.KEY=VALUE ...]
      [--out result.json]
"""

from absl import flags
from ml_collections import config_flags

from gtesim import cli
from gtesim import writing
from gtesim.driver import choice_world
from gtesim.driver import parallel

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file.", lock_config=True)
_OUT = flags.DEFINE_string("out", None, "Write the result (JSON) here.")
flags.mark_flags_as_required(["config"])

_SHOWN = ("truth_independent", "truth_paired", "truth_paired_se", "mean_estimate",
          "estimate_se", "bias_pct", "bias_pct_ci_low", "bias_pct_ci_high", "realised_p",
          "wrong_sign_rate", "coverage_user")


def main(argv):
  del argv
  parallel.split_cpu(_CONFIG.value.replication.cpu_devices)
  result = choice_world.replicate(_CONFIG.value)
  for key in _SHOWN:
    print(f"{key:>20}: {result[key]:.4g}")
  if _OUT.value:
    writing.write_json(_OUT.value, writing.jsonable(result))


if __name__ == "__main__":
  cli.run(main, tag="replication")
