"""The p and alpha-gap sweeps of configs/study.py, on the first 40 of its repetitions.

Run (resumable):
  python scripts/study.py --config configs/study_sweeps.py

The main study's data, horizon, production models and 16-replicate truth (repetition b here is
repetition b there: its production models and, at the main point, its estimates and truth are
the same numbers), at B = 40: the seven designs at p in {0.1, 0.5, 0.9} (gap 1) and at the
alpha gaps {0, 0.25, 0.5, 1} (p = 0.5) as one mapped axis per design, and the truth at every
nonzero gap. B = 40 tells biases of ~10-20% of the truth apart from 0 and from each other at
the far points, not type-I errors (Wilson CI of 0.05 at B = 40: [0.014, 0.17]); the A/A's
type-I errors are the main study's. Kept apart from the main study so that each fits within
an hour on 2 cores: 872 s alone here (pretraining 40 models 59 s, 16 truth replicates of 3
points 419 s, seven designs of 6 points 369 s) on the host where the main study took 1,758 s. Writes experiments/synthetic-small-sweeps/.
"""

import pathlib
import runpy


def get_config():
  config = runpy.run_path(str(pathlib.Path(__file__).with_name("study.py")))["get_config"]()
  config.repetitions = 40
  study = config.study
  study.name = "synthetic-small-sweeps"
  study.p_values = (0.1, 0.5, 0.9)
  study.alpha_gaps = (0.0, 0.25, 0.5, 1.0)
  return config
