"""The A/B estimator and its standard errors; the global truth (SPEC §5).

Every A/B design estimates the GTE by the naive difference of mean outcome per
recommendation, treated minus control. Its standard error comes from the experiment's own
data by three methods:

- `welch`: recommendations as independent draws, sqrt(s_T^2/n_T + s_C^2/n_C), normal quantile;
- `user`: users as independent clusters (cluster-robust, CR1, from per-user sums kept on the
  device; see clustered_variance), normal quantile;
- `batch`: batch means over K blocks of consecutive steps: the estimate of every block, SE =
  sd of the K block estimates / sqrt(K), Student t quantile with K - 1 degrees of freedom. It
  sees the temporal correlation the training loop creates (the models drift, and every
  recommendation of a stretch of steps shares their state);
- `unit`: the design's own randomisation unit where it is not the user: clusters (cluster
  design; per-cluster sums kept on the device) or switchback periods (from the per-step sums),
  cluster-robust (CR1) with a Student t quantile on G - 1 degrees of freedom (G units); NaN
  for the other designs.
"""

import numpy as np
from scipy import stats

METHODS = ("welch", "user", "batch", "unit")
LEVEL = 0.95  # SPEC §5: 95% confidence intervals (result.json `ci95_per_rep`).


def _mean(total, n):
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(n > 0, total / np.where(n > 0, n, 1), np.nan)


def clustered_variance(unit_sum, unit_n, xp=np):
  """Variance [L] of the naive estimate with independent units (users, clusters, periods):
  CR1.

  The estimate is m_T - m_C with m_a = sum_i S_ia / N_a over units i (S_ia: unit i's summed
  outcome in arm a, n_ia its recommendations, N_a = sum_i n_ia). Its linearisation is
  sum_i psi_i with psi_i = (S_iT - n_iT m_T) / N_T - (S_iC - n_iC m_C) / N_C, so
  var = G / (G - 1) sum_i psi_i^2 over the G units with a recommendation. NaN until both arms
  have one.

  Args:
    unit_sum: [G, 2, L]; unit_n: [G, 2]; xp: numpy, or jax.numpy on the device.
  """
  big_n = xp.sum(unit_n, axis=0)  # [2]
  mean = xp.sum(unit_sum, axis=0) / xp.maximum(big_n, 1)[:, None]  # [2, L]
  resid = (unit_sum - unit_n[..., None] * mean[None]) / xp.maximum(big_n, 1)[None, :, None]
  psi = resid[:, 0] - resid[:, 1]  # [G, L]
  g = xp.sum(xp.sum(unit_n, axis=1) > 0)
  var = xp.sum(psi * psi, axis=0) * g / xp.maximum(g - 1, 1)
  return xp.where(xp.all(big_n > 0) & (g > 1), var, xp.nan)


def period_variance(outcome_sum, n_recs, period: int):
  """([B, L] switchback variance with periods of `period` steps as the units (CR1), the
  number of periods).

  Args:
    outcome_sum: [T, B, 2, L] per-step sums (burn-in steps already left out: zero counts).
    n_recs: [T, B, 2].
  """
  t = outcome_sum.shape[0]
  index = np.arange(t) // period
  g = int(index[-1]) + 1 if t else 0
  sums = np.zeros((g,) + outcome_sum.shape[1:])
  counts = np.zeros((g,) + n_recs.shape[1:])
  np.add.at(sums, index, outcome_sum.astype(np.float64))
  np.add.at(counts, index, n_recs.astype(np.float64))
  return np.stack([clustered_variance(sums[:, b], counts[:, b])
                   for b in range(outcome_sum.shape[1])]), g


def unit_variance(design, steps_sum, steps_n, evals: dict, e: int, point: int):
  """(unit_var [B, L] or None, n_units) of a design at validation e of a point.

  Args:
    design: designs.Design.
    steps_sum, steps_n: [T, B, 2, L] / [T, B, 2] per-step sums of the point (up to e).
    evals: the history's evaluations (cluster design: "unit_var", "unit_count").
  """
  if design.name == "switchback":
    return period_variance(steps_sum, steps_n, design.switch_every)
  if "unit_var" in evals:
    return evals["unit_var"][e][:, point], int(np.max(evals["unit_count"][e][:, point]))
  return None, 0


def ab_estimate(outcome_sum, outcome_sq, n_recs, user_var, n_blocks: int, level: float,
                unit_var=None, n_units: int = 0):
  """Estimates, standard errors and CIs of the treated-minus-control difference.

  Args:
    outcome_sum, outcome_sq: [T, B, 2, L] per-step sums (arm 0 = T, 1 = C).
    n_recs: [T, B, 2] per-step recommendations.
    user_var: [B, L] user-clustered variance over these T steps, or None.
    n_blocks: K, the blocks of the batch-means method (needs T >= K).
    level: confidence level of the intervals (0.95).
    unit_var: [B, L] variance with the design's units (clusters, periods), or None.
    n_units: G, the number of those units (t quantile with G - 1 degrees of freedom).

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
  se["unit"] = (np.sqrt(np.asarray(unit_var, np.float64)) if unit_var is not None
                else np.full_like(est, np.nan))
  z = stats.norm.ppf(0.5 + level / 2)
  quantile = {"welch": z, "user": z, "batch": stats.t.ppf(0.5 + level / 2, max(k - 1, 1)),
              "unit": stats.t.ppf(0.5 + level / 2, max(n_units - 1, 1))}
  ci = {m: np.stack([est - quantile[m] * se[m], est + quantile[m] * se[m]], -1)
        for m in METHODS}
  return {"estimate": est, "arm_mean": mean, "se": se, "ci": ci}


def world_means(outcome_sum, n_recs):
  """Mean outcome per recommendation [B, W, L] from per-step sums [T, B, W, L] and
  counts [T, B, W]."""
  return _mean(outcome_sum.astype(np.float64).sum(0),
               n_recs.astype(np.float64).sum(0)[..., None])
