"""Global mode: the GT (everyone treated) and GC (everyone control) worlds; the true GTE.

Run:  python scripts/run.py --config configs/global.py
"""

from gtesim import default_config


def get_config():
  config = default_config.get_config()
  config.mode = "global"
  return config
