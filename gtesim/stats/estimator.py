"""The A/B estimator with every method's standard error and CI; the global truth's means.

The estimate is the naive difference of mean outcome per recommendation, treated minus
control (SPEC §5); its standard errors come from the methods of `variance.METHODS`.
"""

import numpy as np

from gtesim.stats import variance
from gtesim.stats.variance import METHODS, _mean

LEVEL = 0.95  # SPEC §5: 95% confidence intervals (result.json `ci95_per_rep`).


def ab_estimate(outcome_sum, outcome_sq, n_recs, user_var, n_blocks: int, level: float,
                unit_var=None, unit_df=None):
  """Estimates, standard errors and CIs of the treated-minus-control difference.

  Args:
    outcome_sum, outcome_sq: [T, B, 2, L] per-step sums (arm 0 = T, 1 = C).
    n_recs: [T, B, 2] per-step recommendations.
    user_var: [B, L] user-clustered variance over these T steps, or None.
    n_blocks: K, the blocks of the batch-means method (needs T >= K).
    level: confidence level of the intervals (0.95).
    unit_var: [B, L] variance with the design's units (clusters, periods), or None.
    unit_df: [B, L] the degrees of freedom of unit_var (variance.unit_df), or None.

  Returns:
    {"estimate": [B, L], "arm_mean": [B, 2, L], "se": {method: [B, L]},
     "ci": {method: [B, L, 2]}}.
  """
  total = outcome_sum.astype(np.float64).sum(0)
  sq = outcome_sq.astype(np.float64).sum(0)
  n = n_recs.astype(np.float64).sum(0)[..., None]  # [B, 2, 1]
  mean = _mean(total, n)
  with np.errstate(invalid="ignore", divide="ignore"):
    var = np.maximum(sq - n * mean * mean, 0.0) / np.where(n > 1, n - 1, np.nan)
    est = mean[:, 0] - mean[:, 1]
  sums = variance.Sums(outcome_sum, n_recs, n, var, user_var, unit_var, unit_df, n_blocks)
  se = {m: method.se(sums, est) for m, method in METHODS.items()}
  ci = {}
  for m, method in METHODS.items():
    q = method.quantile(sums, level)
    ci[m] = np.stack([est - q * se[m], est + q * se[m]], -1)
  return {"estimate": est, "arm_mean": mean, "se": se, "ci": ci}


def world_means(outcome_sum, n_recs):
  """Mean outcome per recommendation [B, W, L] from per-step sums [T, B, W, L] and
  counts [T, B, W]."""
  return _mean(outcome_sum.astype(np.float64).sum(0),
               n_recs.astype(np.float64).sum(0)[..., None])
