"""The default study: global truth and the seven A/B designs at the main point and the A/A, B = 200.

Run:
  python scripts/study.py --config configs/study.py

Synthetic data at the `small` size (2,000 users, 3,000 videos, 200k logged interactions), so
that a horizon of 4 epochs over the 1,800 train users (112 steps of 64 users; every user is
recommended to 4 times) fits on 2 CPU cores: the production models are pretrained once per
repetition on 30,000 logged rows until their validation loss plateaus, then every job runs
from them. The main point (p = 0.5, gap 1) and the A/A (gap 0) run on B = 200 repetitions
(Wilson CI of a type-I error of 0.05 at B = 200: [0.027, 0.090], so 0.05 is told from 0.10).
Each repetition's truth is the mean of 16 global replicates: one replicate's real sd of play
time is ~1,870 ms against pooling's user SE of 1,450 ms, so K >= 15 for at most a third.
Measured alone on 2 cores: 1,758 s (setup 15 s, pretraining 274 s, 16 truth replicates of
49-58 s, seven designs of 67-95 s, report ~40 s); an older 2-core host took about twice as long
(~59 min; with 18 replicates and the sweeps below, ~81 min). The
p and alpha-gap sweeps are configs/study_sweeps.py (the first 40 of these repetitions), the
frozen-model truth and the production-state sweep configs/study_mechanisms.py.
Writes experiments/<study.name>/: study.json, report.md, figures, production/ and
runs/<job>/; an interrupted study reuses its production models and finished jobs.
"""

from gtesim.config import defaults as default_config


def get_config():
  config = default_config.get_config()
  config.data.synthetic.size = "small"
  config.repetitions = 200
  config.sim.batch_size = 64  # 28 steps per epoch of the 1,800 train users.
  config.sim.n_steps = 112  # 4 epochs.
  config.sim.validate_every = 14
  config.checkpoint_every = 112
  config.sim.eval_rows = 2048  # The validation pool (200 users x 300 test videos) is ~2,000.
  config.pretrain.n_interactions = 30_000  # B = 200 production models in ~10 min here.
  config.estimator.batch_blocks = 8  # Blocks of 14 steps.
  config.study = study = default_config.study_section()
  study.name = "synthetic-small"
  study.p_values = (0.5,)
  study.alpha_gaps = (0.0, 1.0)
  study.truth_replicates = 16
  study.frozen_truth = False
  study.weighting_video = False
  return config
