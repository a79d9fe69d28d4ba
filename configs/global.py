"""Global mode: the GT (everyone treated) and GC (everyone control) worlds give the true GTE.

Run:
  python scripts/run.py --config configs/global.py

Synthetic Pure-like data, 8 repetitions, production models pretrained until their validation
loss plateaus, then 200 steps x 256 users, 16 candidates. About 2 minutes on 2 CPU cores
(pretraining 88 s, then ~110k recommendations/s). Expected result (seed 0; +- is the standard
error over the 8 repetitions):
  click:     GT 0.5957, GC 0.6557, GTE -0.0600 +- 0.0021 (-9.2%)
  play_time: GT 92,577 ms, GC 56,174 ms, GTE +36,403 +- 916 ms (+64.8%)
Treatment ranks by predicted play time, control by click probability.
"""

from gtesim.config import defaults as default_config


def get_config():
  config = default_config.get_config()
  config.mode = "global"
  return config
