"""Study on the synthetic latent truth (sim.environment = "latent"), a 3x longer horizon.

Run:
  python scripts/study.py --config configs/study_latent.py

The synthetic `small` data of configs/study.py (2,000 users, 3,000 videos), but candidates
come from the whole catalogue of train videos and outcomes are drawn from the latent model, so
no user ever runs out: 336 steps of 64 users = 12 epochs (every train user is recommended to 12
times; the replay study stops at 4, and replaying the logs this long leaves users without
items). Truth (trained and frozen models) and the seven designs at the main point and in the
A/A (gap 0), B = 100. Writes experiments/synthetic-latent/.
"""

from gtesim.config import defaults as default_config


def get_config():
  config = default_config.get_config()
  config.data.synthetic.size = "small"
  config.sim.environment = "latent"
  config.repetitions = 100
  config.sim.batch_size = 64  # 28 steps per epoch of the 1,800 train users.
  config.sim.n_steps = 336  # 12 epochs.
  config.sim.validate_every = 42
  config.checkpoint_every = 336
  config.sim.candidate_draws = 128  # Co-diverted rejects the other arm's half of the draws.
  config.sim.eval_rows = 2048
  config.pretrain.n_interactions = 100_000
  config.estimator.batch_blocks = 8  # Blocks of 42 steps.
  config.study = study = default_config.study_section()
  study.name = "synthetic-latent"
  study.p_values = (0.5,)
  study.alpha_gaps = (0.0, 1.0)
  study.weighting_video = False
  return config
