"""Study on the synthetic latent truth (sim.environment = "latent"), the replay study's horizon.

Run:
  python scripts/study.py --config configs/study_latent.py

The synthetic `small` data and the horizon of configs/study.py (112 steps of 64 users = 4
epochs), but candidates come from the whole catalogue of train videos and outcomes are drawn
from the latent model, so no user ever runs short of candidates: at the same horizon, the
difference to the replay study is the environment alone (the horizon's own effect is in
every job's horizon block and in configs/study_mechanisms.py). Truth and six designs (cluster's
unit SE is the main study's subject) at the main point and in the A/A, B = 200; each
repetition's truth is the mean of 10 global replicates (one replicate's SE, play time ~1,215
ms under the earlier code, about the estimate's ~1,207: K >= 9 for at most a third); the
expected-outcome truth beside it. Writes experiments/synthetic-latent/.
"""

from gtesim.config import defaults as default_config


def get_config():
  config = default_config.get_config()
  config.data.synthetic.size = "small"
  config.sim.environment = "latent"
  config.repetitions = 200
  config.sim.batch_size = 64  # 28 steps per epoch of the 1,800 train users.
  config.sim.n_steps = 112  # 4 epochs.
  config.sim.validate_every = 14
  config.checkpoint_every = 112
  config.sim.candidate_draws = 128  # Co-diverted rejects the other arm's half of the draws.
  config.sim.eval_rows = 2048
  config.pretrain.n_interactions = 30_000  # B = 200 production models in ~10 min here.
  config.estimator.batch_blocks = 8  # Blocks of 14 steps.
  config.study = study = default_config.study_section()
  study.name = "synthetic-latent"
  study.designs = ("pooling", "splitting", "snapshot", "weighting", "codiverted", "switchback")
  study.p_values = (0.5,)
  study.alpha_gaps = (0.0, 1.0)
  study.weighting_video = False
  study.frozen_truth = False
  study.truth_replicates = 10
  study.expected_truth = True
  return config
