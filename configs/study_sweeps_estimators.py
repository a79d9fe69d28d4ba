"""The p sweep of configs/study_sweeps.py scored by the estimators that need it: p_extrapolation
(each arm's mean, linear in its traffic share, extrapolated to p = 1 and p = 0) and CUPED.

Run (resumable):
  python scripts/study.py --config configs/study_sweeps_estimators.py

The main study's world (synthetic `small`, replay, 112 steps of 64 users, MLP rankers) at its
first 40 repetitions, the seven designs at p in {0.1, 0.5, 0.9} (gap 1 only: the estimators
need the p sweep, not the gap sweep) and the 16-replicate truth. Every design point of one
repetition gets the same p_extrapolation estimate (the run's). Writes
experiments/synthetic-small-sweeps-estimators/.
"""

import pathlib
import runpy


def get_config():
  path = pathlib.Path(__file__).with_name("study_sweeps.py")
  config = runpy.run_path(str(path))["get_config"]()
  config.study.name = "synthetic-small-sweeps-estimators"
  config.study.alpha_gaps = (1.0,)
  config.estimator.names = ("p_extrapolation", "cuped")
  return config
