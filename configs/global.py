"""Global mode: the GT (everyone treated) and GC (everyone control) worlds give the true GTE.

Run:
  python scripts/run.py --config configs/global.py

Synthetic Pure-like data, 8 repetitions, 200 steps x 256 users, 16 candidates. About 75 s on
2 CPU cores (pretraining 14 s, ~21k recommendations/s). Expected result (seed 0):
  click:     GT 0.504, GC 0.595, GTE -0.0909 +- 0.0017 (-15.3%)
  play_time: GT 65,478 ms, GC 44,275 ms, GTE +21,203 +- 1,200 ms (+47.8%)
Treatment ranks by predicted play time, control by click probability.
"""

from gtesim import default_config


def get_config():
  config = default_config.get_config()
  config.mode = "global"
  return config
