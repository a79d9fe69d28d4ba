"""The mechanisms the analyses invoke, measured, on the data and horizon of configs/study.py.

Run:
  python scripts/study.py --config configs/study_mechanisms.py

- The production model's state: besides the converged production models (30k rows until the
  validation loss plateaus), a cold state (5,000 rows, to its own plateau) and a partly
  trained one (30k rows, one epoch), each with its own truth (trained and frozen models) and
  pooling, splitting and weighting at the main point: how much the models' learning during
  the experiment moves the truth (trained - frozen) and each design's bias, per state.
- The horizon: every job's cumulative estimate and truth at each validation step (a run of t
  steps is the first t steps of a longer one), per state.
- Switchback's carry-over: periods of 7, 14 and 28 steps, each without and with a burn-in.
- Snapshot against the frozen-model truth it estimates.
B = 100, each truth the mean of 7 global replicates (not the main study's 16: three states x
trained and frozen truths x 16 would be 96 truth jobs; at K = 7 the truth's SE is ~0.5 of the
estimate's user SE, which the net-of-noise statistics account for, and the states' mean truths
and biases average it over B). Writes experiments/synthetic-small-mechanisms/; 55 min alone on
a 2-core Intel Xeon host (42 truth jobs of 35-57 s, 16 design jobs, three pretrainings).
"""

import pathlib
import runpy


def get_config():
  config = runpy.run_path(str(pathlib.Path(__file__).with_name("study.py")))["get_config"]()
  config.repetitions = 100
  study = config.study
  study.name = "synthetic-small-mechanisms"
  study.designs = ("pooling", "splitting", "weighting", "snapshot", "switchback")
  study.p_values = (0.5,)
  study.alpha_gaps = (0.0, 1.0)
  study.sweep_repetitions = 0
  study.truth_replicates = 7
  study.frozen_truth = True
  study.production_states = (("cold", 5_000, 0), ("partial", 30_000, 1))
  study.state_designs = ("pooling", "splitting", "weighting")
  study.switchback_variants = ((7, 0), (7, 2), (14, 0), (28, 0), (28, 4))
  return config
