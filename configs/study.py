"""The default study: global truth and the four A/B designs, every sweep point, B = 100.

Run:
  python scripts/study.py --config configs/study.py

Synthetic data at the `small` size (2,000 users, 3,000 videos, 200k logged interactions), so
that a horizon of 4 epochs over the 1,800 train users (112 steps of 64 users; every user is
recommended to 4 times) fits on 2 CPU cores: the production models are pretrained once per
repetition until their validation loss plateaus, then the truth (trained and frozen models,
3 alpha gaps), the four designs and weighting with G on video features only (8 points each:
p in {0.1, 0.2, 0.5, 0.8, 0.9} at gap 1, gaps {0, 0.25, 0.5} at p = 0.5) run from it.
26 minutes on 2 CPU cores (report.md lists what each part cost). Writes
experiments/<study.name>/: study.json, report.md, figures, production/ and runs/<job>/;
an interrupted study reuses its production models and finished jobs.
"""

from gtesim.config import defaults as default_config


def get_config():
  config = default_config.get_config()
  config.data.synthetic.size = "small"
  config.repetitions = 100
  config.sim.batch_size = 64  # 28 steps per epoch of the 1,800 train users.
  config.sim.n_steps = 112  # 4 epochs.
  config.sim.validate_every = 14
  config.checkpoint_every = 112
  config.sim.eval_rows = 2048  # The validation pool (200 users x 300 test videos) is ~2,000.
  config.pretrain.n_interactions = 100_000
  config.estimator.batch_blocks = 8  # Blocks of 14 steps.
  config.study = study = default_config.study_section()
  study.name = "synthetic-small"
  return config
