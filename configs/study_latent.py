"""Study on the synthetic latent truth (sim.environment = "latent"), half the replay horizon.

Run (resumable):
  python scripts/study.py --config configs/study_latent.py

The synthetic `small` data and the batch of configs/study.py (64 users per step), 56 steps =
2 epochs (the first half of the replay study's 112), but candidates come from the whole
catalogue of train videos and outcomes are drawn from the latent model, so no user ever runs
short of candidates: against the replay study's horizon block at step 56 (its cumulative
estimate and truth after the same 56 steps), the difference is the environment alone. Truth
and six designs (cluster's unit SE is the main study's subject) at the main point and in the
A/A, B = 200; each repetition's truth is the mean of 20 global replicates: at 112 steps one
replicate's real sd was ~1,700 ms of play time against pooling's user SE of ~1,210 (K = 10
gave 0.44 of it), so the one-third target needs K >= 18 (the ratio does not depend on the
horizon to first order: both SEs shrink as 1/sqrt(visits)); the expected-outcome truth beside
it. Half the horizon keeps the study within an hour on 2 cores (at 112 steps and K = 20 it
would be ~95 min: 20 replicates at ~2.6 min). Writes experiments/synthetic-latent/.
"""

from gtesim.config import defaults as default_config


def get_config():
  config = default_config.get_config()
  config.data.synthetic.size = "small"
  config.sim.environment = "latent"
  config.repetitions = 200
  config.sim.batch_size = 64  # 28 steps per epoch of the 1,800 train users.
  config.sim.n_steps = 56  # 2 epochs.
  config.sim.validate_every = 14  # The replay study's horizon steps 14, 28, 42, 56.
  config.checkpoint_every = 56
  config.sim.candidate_draws = 128  # Co-diverted rejects the other arm's half of the draws.
  config.sim.eval_rows = 2048
  config.pretrain.n_interactions = 30_000  # B = 200 production models in ~10 min here.
  config.estimator.batch_blocks = 8  # Blocks of 7 steps.
  # 8 switchback periods of 7 steps (2 of burn-in), as the replay study's 8 of 14: its unit SE
  # needs the periods; period length's own effect is in configs/study_mechanisms.py (7, 2).
  config.experiment.switchback.every = 7
  config.study = study = default_config.study_section()
  study.name = "synthetic-latent"
  study.designs = ("pooling", "splitting", "snapshot", "weighting", "codiverted", "switchback")
  study.p_values = (0.5,)
  study.alpha_gaps = (0.0, 1.0)
  study.weighting_video = False
  study.frozen_truth = False
  study.truth_replicates = 20
  study.expected_truth = True
  return config
