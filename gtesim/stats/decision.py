"""What a design's intervals would decide: launch rates, power, wrong signs (SPEC §6).

Every label here is "more is better" (a launch is a CI above 0). Against repetition b's own
truth T_b (the replicated truth; repetitions with T_b = 0 are left out of the sign metrics):

- sign_agree: sign(est_b) = sign(T_b);
- power: the CI excludes 0 on T_b's side;
- wrong_significant: the CI excludes 0 on the other side (a confident wrong decision);
- launch: the CI lies above 0 (in the A/A, gap 0, the false launch rate: 0.025 nominal).

Each is a share of repetitions with its Wilson interval (intervals.share).
"""

import numpy as np

from gtesim.stats import intervals


def decisions(est, truth, ci) -> dict:
  """est, truth: [n]; ci: [n, 2] (undefined repetitions left out by the caller)."""
  est, truth, ci = (np.asarray(x, np.float64) for x in (est, truth, ci))
  signed = truth != 0
  above, below = ci[:, 0] > 0, ci[:, 1] < 0
  right = np.where(truth > 0, above, below)
  wrong = np.where(truth > 0, below, above)
  return {"sign_agree": intervals.share((np.sign(est) == np.sign(truth))[signed]),
          "power": intervals.share(right[signed]),
          "wrong_significant": intervals.share(wrong[signed]),
          "launch": intervals.share(above)}


def widened(est, se, q, factor):
  """[n, 2] intervals est ± factor q se (a method's CI with its inflation factor)."""
  half = factor * np.asarray(q, np.float64) * np.asarray(se, np.float64)
  return np.stack([est - half, est + half], -1)
