"""What the ranker does to the designs: the latent environment with videos released during
the experiment, a long horizon, the seven designs at p = 0.5 and the A/A, and an exploration
sweep for pooling and splitting; run once per ranker (`labels.*.model`).

Run (resumable):
  python scripts/study.py --config configs/study_rankers.py --out experiments/rankers/mlp
  python scripts/study.py --config configs/study_rankers.py:two_tower \\
      --out experiments/rankers/two_tower

The synthetic `mini` data (400 users, 800 videos, 40,000 logged rows): 360 train users, 24
sampled per step, 150 steps = 10 epochs (every train user is recommended to 10 times). 20% of
the train videos are new: left out of pretraining, released at a step uniform over the 150.
Every job explores epsilon-greedily at epsilon = 0 (exactly greedy); pooling and splitting
also run at epsilon 0.3, with its own truth. B = 200; each truth (trained, frozen models, at
epsilon 0.3) the mean of 10 global replicates: at K = 8 the truth's SE was 0.33 (mlp) and 0.37
(two-tower) of pooling's play-time user SE, over the one-third target; K = 10 brings it to
sqrt(8/10) of that (one replicate's real sd is ~1.6x its batch-means SE). Cost alone on 2
cores: measured per host in docs/studies.md (30 truth jobs, seven designs).
"""

from gtesim.config import defaults as default_config

RANKERS = ("mlp", "two_tower")


def get_config(ranker="mlp"):
  config = default_config.get_config()
  config.data.synthetic.size = "mini"
  config.sim.environment = "latent"
  config.sim.release = "staggered"
  config.sim.new_video_share = 0.2
  config.sim.exploration = "epsilon"
  config.sim.epsilon = 0.0
  config.repetitions = 200
  config.sim.batch_size = 24  # 15 steps per epoch of the 360 train users.
  config.sim.n_steps = 150  # 10 epochs.
  config.sim.validate_every = 30
  config.checkpoint_every = 150
  config.sim.candidate_draws = 96  # Co-diverted rejects the other arm's half of the draws.
  config.sim.eval_rows = 1024
  config.pretrain.n_interactions = 12_000
  config.pretrain.batch_size = 256
  config.estimator.batch_blocks = 5  # Blocks of 30 steps.
  for name in config.labels:
    config.labels[name].model = ranker
  config.study = study = default_config.study_section()
  study.name = f"rankers-{ranker}"
  study.p_values = (0.5,)
  study.alpha_gaps = (0.0, 1.0)
  study.weighting_video = False
  study.epsilons = (0.3,)
  study.truth_replicates = 10
  study.exploration_designs = ("pooling", "splitting")
  return config
