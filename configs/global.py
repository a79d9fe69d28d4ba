"""Global mode: the GT (everyone treated) and GC (everyone control) worlds give the true GTE.

Run:
  python scripts/run.py --config configs/global.py

Synthetic Pure-like data, 8 repetitions, production models pretrained until their validation
loss plateaus, then 200 steps x 256 users, 16 candidates. About 2 minutes on 2 CPU cores
(pretraining 88 s, then ~110k recommendations/s). The expected result (seed 0) is in
README.md's quick start, the one place it is kept.
Treatment ranks by predicted play time, control by click probability.
"""

from gtesim.config import defaults as default_config


def get_config():
  config = default_config.get_config()
  config.mode = "global"
  return config
