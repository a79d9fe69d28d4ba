"""A/B experiment, switchback design.

Run:  python scripts/run.py --config configs/switchback.py

Every experiment.switch_every steps the whole population switches to an arm drawn at random
(treated with probability p; or alternating, experiment.switch_order); both arms' models train
on all data; the first experiment.switch_burn_in steps of each period are left out of the
estimate; the `unit` standard error treats periods as the units.
"""

from gtesim.config import defaults as default_config


def get_config():
  config = default_config.get_config()
  config.mode = "switchback"
  return config
