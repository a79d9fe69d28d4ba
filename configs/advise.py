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

import pathlib
import runpy

from gtesim.config import defaults as default_config


def get_config():
  default = runpy.run_path(str(pathlib.Path(__file__).with_name("study.py")))
  config = default["get_config"]()  # Its data, sizes and horizon; the advisor's own study.
  with config.unlocked():
    del config["study"]
  config.repetitions = 8  # The default's; each batch sets its own (advise.batch).
  config.sim.validate_every = 28
  config.estimator.names = ("cuped",)
  config.advise = default_config.advise_section()
  return config
