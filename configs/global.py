"""Global mode: the GT (everyone treated) and GC (everyone control) worlds give the true GTE.

Run:
  python scripts/run.py --config configs/global.py

Synthetic Pure-like data, 8 repetitions, 200 steps x 256 users, 16 candidates. About 60 s on
2 CPU cores (pretraining 14 s, first chunk with compilation 8 s, ~25k recommendations/s).
Expected result (seed 0; +- is the standard error over the 8 repetitions):
  click:     GT 0.5038, GC 0.5948, GTE -0.0910 +- 0.0019 (-15.3%)
  play_time: GT 66,528 ms, GC 44,476 ms, GTE +22,053 +- 910 ms (+49.6%)
Treatment ranks by predicted play time, control by click probability.
"""

from gtesim import default_config


def get_config():
  config = default_config.get_config()
  config.mode = "global"
  return config
