"""The A/B estimator and its standard errors; the global truth (SPEC §5).

Every A/B design estimates the GTE by the naive difference of mean outcome per
recommendation, treated minus control. Its standard error comes from the experiment's own
data by three methods:

- `welch`: recommendations as independent draws, sqrt(s_T^2/n_T + s_C^2/n_C), normal quantile;
- `user`: users as independent clusters (cluster-robust, CR1, from per-user sums kept on the
  device; see step.user_clustered_variance), normal quantile;
- `batch`: batch means over K blocks of consecutive steps: the estimate of every block, SE =
  sd of the K block estimates / sqrt(K), Student t quantile with K - 1 degrees of freedom. It
  sees the temporal correlation the training loop creates (the models drift, and every
  recommendation of a stretch of steps shares their state).
"""

import numpy as np
from scipy import stats

METHODS = ("welch", "user", "batch")
LEVEL = 0.95  # SPEC §5: 95% confidence intervals (result.json `ci95_per_rep`).


def _mean(total, n):
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(n > 0, total / np.where(n > 0, n, 1), np.nan)


def ab_estimate(outcome_sum, outcome_sq, n_recs, user_var, n_blocks: int, level: float):
  """Estimates, standard errors and CIs of the treated-minus-control difference.

  Args:
    outcome_sum, outcome_sq: [T, B, 2, L] per-step sums (arm 0 = T, 1 = C).
    n_recs: [T, B, 2] per-step recommendations.
    user_var: [B, L] user-clustered variance over these T steps, or None.
    n_blocks: K, the blocks of the batch-means method (needs T >= K).
    level: confidence level of the intervals (0.95).

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
    se = {"welch": np.sqrt(var[:, 0] / n[:, 0] + var[:, 1] / n[:, 1])}
  se["user"] = (np.sqrt(np.asarray(user_var, np.float64)) if user_var is not None
                else np.full_like(est, np.nan))
  k = min(n_blocks, outcome_sum.shape[0])
  blocks = [(outcome_sum[b].astype(np.float64).sum(0), n_recs[b].astype(np.float64).sum(0))
            for b in np.array_split(np.arange(outcome_sum.shape[0]), k)]
  block_mean = np.stack([_mean(t, c[..., None]) for t, c in blocks])  # [K, B, 2, L]
  block_est = block_mean[:, :, 0] - block_mean[:, :, 1]
  se["batch"] = (block_est.std(axis=0, ddof=1) / np.sqrt(k) if k > 1
                 else np.full_like(est, np.nan))
  z = stats.norm.ppf(0.5 + level / 2)
  quantile = {"welch": z, "user": z, "batch": stats.t.ppf(0.5 + level / 2, max(k - 1, 1))}
  ci = {m: np.stack([est - quantile[m] * se[m], est + quantile[m] * se[m]], -1)
        for m in METHODS}
  return {"estimate": est, "arm_mean": mean, "se": se, "ci": ci}


def world_means(outcome_sum, n_recs):
  """Mean outcome per recommendation [B, W, L] from per-step sums [T, B, W, L] and
  counts [T, B, W]."""
  return _mean(outcome_sum.astype(np.float64).sum(0),
               n_recs.astype(np.float64).sum(0)[..., None])
