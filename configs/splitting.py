"""A/B experiment, splitting design: one world, users treated with probability p (SPEC §5).

Run:  python scripts/run.py --config configs/splitting.py
"""

from gtesim.config import defaults as default_config


def get_config():
  config = default_config.get_config()
  config.mode = "splitting"
  return config
