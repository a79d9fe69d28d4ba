"""The estimators study: every estimator that applies scored beside each design, in the default
study's world under request-level randomisation.

Run:
  python scripts/study.py --config configs/study_estimators.py

The world of configs/study.py (synthetic `small`, replay, 112 steps of 64 users, MLP rankers,
p = 0.5) with `experiment.assignment = "step"` (every user's arm drawn anew every step: the
randomisation dq needs; the user SE then clusters a user's recommendations across both arms).
Pooling, splitting and snapshot at the main point and the A/A, each by the difference in
means, CUPED (each user's logged mean as the covariate) and Differences-in-Q at horizons 1, 5
and 20 steps. B = 100, truth of 6 replicates. p_extrapolation needs a p sweep (its own study:
configs/study_sweeps.py's world; docs/estimators.md).
"""

import pathlib
import runpy


def get_config():
  default = runpy.run_path(str(pathlib.Path(__file__).with_name("study.py")))
  config = default["get_config"]()  # Its data, sizes, horizon and study section; then:
  config.repetitions = 100
  config.sim.validate_every = 28
  config.experiment.assignment = "step"
  config.estimator.names = ("cuped", "dq")
  config.estimator.dq.horizons = (1, 5, 20)
  config.study.name = "synthetic-small-estimators"
  config.study.designs = ("pooling", "splitting", "snapshot")
  config.study.truth_replicates = 6
  return config
