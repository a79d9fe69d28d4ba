"""The advisor on the default synthetic data: which design and estimator to run.

Run:
  python scripts/advise.py --config configs/advise.py --out experiments/advise-default

The team's setting is the usual keys: the data (`data.*`), each arm's ranker (`arms.*`,
`labels.*`), the traffic split `experiment.p_treatment` and the horizon `sim.n_steps`; the
advisor's own are `advise.*` (gtesim/config/defaults.advise_section). Here: the `small`
synthetic data and the default study's horizon (112 steps of 64 users, every train user
recommended to 4 times), both arms MLP rankers at p = 0.5; every A/B design, each by the
difference in means and by CUPED, decided on click.
"""

from gtesim.config import defaults as default_config


def get_config():
  config = default_config.get_config()
  config.data.synthetic.size = "small"
  config.sim.batch_size = 64
  config.sim.n_steps = 112
  config.sim.validate_every = 28
  config.checkpoint_every = 112
  config.sim.eval_rows = 2048
  config.pretrain.n_interactions = 30_000
  config.estimator.batch_blocks = 8
  config.estimator.names = ("cuped",)
  config.advise = default_config.advise_section()
  return config
