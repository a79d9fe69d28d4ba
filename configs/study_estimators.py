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

from gtesim.config import defaults as default_config


def get_config():
  config = default_config.get_config()
  config.data.synthetic.size = "small"
  config.repetitions = 100
  config.sim.batch_size = 64
  config.sim.n_steps = 112
  config.sim.validate_every = 28
  config.checkpoint_every = 112
  config.sim.eval_rows = 2048
  config.pretrain.n_interactions = 30_000
  config.estimator.batch_blocks = 8
  config.experiment.assignment = "step"
  config.estimator.names = ("cuped", "dq")
  config.estimator.dq.horizons = (1, 5, 20)
  config.study = study = default_config.study_section()
  study.name = "synthetic-small-estimators"
  study.designs = ("pooling", "splitting", "snapshot")
  study.p_values = (0.5,)
  study.alpha_gaps = (0.0, 1.0)
  study.truth_replicates = 6
  study.frozen_truth = False
  study.weighting_video = False
  return config
