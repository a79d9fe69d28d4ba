"""The standard-error methods of the A/B estimate, one table entry each (SPEC §5).

Every A/B design estimates the GTE by the naive difference of mean outcome per
recommendation, treated minus control. Its standard error comes from the experiment's own
data by each method of METHODS:

- `welch`: recommendations as independent draws, sqrt(s_T^2/n_T + s_C^2/n_C), normal quantile;
- `user`: users as independent clusters (cluster-robust, CR1, from per-user sums kept on the
  device; see clustered_variance), normal quantile;
- `batch`: batch means over K blocks of consecutive steps: the estimate of every block, SE =
  sd of the K block estimates / sqrt(K), Student t quantile with K - 1 degrees of freedom. It
  sees the temporal correlation the training loop creates (the models drift, and every
  recommendation of a stretch of steps shares their state);
- `unit`: the design's own randomisation unit where it is not the user: clusters (cluster
  design; per-cluster sums kept on the device) or switchback periods (from the per-step sums),
  the two-sample form on units (each arm's part with its own units' small-sample factor) and
  a Student t quantile on its Welch-Satterthwaite degrees of freedom, per repetition
  (arm_clustered_variance): with 3 treated clusters of 20 the quantile is near t_2's, not
  t_19's. Undefined (NaN) where an arm has fewer than 2 units. NaN for the other designs (the
  design's unit piece's `variance` gives the variance and its degrees of freedom).

Adding a method is one function pair and one METHODS entry (docs/extending.md).
"""

import dataclasses
from typing import Callable

import numpy as np
from scipy import stats


def _mean(total, n):
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(n > 0, total / np.where(n > 0, n, 1), np.nan)


def _residuals(unit_sum, unit_n, xp):
  """(resid [G, 2, L], N [2]): each unit's (S_ia - n_ia m_a) / N_a, and the arms' N_a (the
  linearisation of m_T - m_C every clustered variance below shares)."""
  big_n = xp.sum(unit_n, axis=0)  # [2]
  mean = xp.sum(unit_sum, axis=0) / xp.maximum(big_n, 1)[:, None]  # [2, L]
  return (unit_sum - unit_n[..., None] * mean[None]) / xp.maximum(big_n, 1)[None, :, None], big_n


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
  resid, big_n = _residuals(unit_sum, unit_n, xp)
  psi = resid[:, 0] - resid[:, 1]  # [G, L]
  g = xp.sum(xp.sum(unit_n, axis=1) > 0)
  var = xp.sum(psi * psi, axis=0) * g / xp.maximum(g - 1, 1)
  return xp.where(xp.all(big_n > 0) & (g > 1), var, xp.nan)


def covariate_moments(unit_sum, unit_n, x, xp=np):
  """(dx, c_xy, c_xx), each [L]: what the covariate-adjusted (CUPED) estimate needs of units
  with a pre-experiment covariate x [G, L] (estimators/cuped.py).

  With m_a, N_a and psi_i as in clustered_variance, the arm's covariate mean is
  xbar_a = sum_i n_ia x_i / N_a (recommendation-weighted, as the outcome's mean), dx =
  xbar_T - xbar_C, and the linearisation of dx is phi_i = n_iT (x_i - xbar_T) / N_T -
  n_iC (x_i - xbar_C) / N_C; c_xy = G / (G - 1) sum_i psi_i phi_i and c_xx = G / (G - 1)
  sum_i phi_i^2 (CR1, as clustered_variance's). NaN until both arms have a recommendation.
  """
  resid, big_n = _residuals(unit_sum, unit_n, xp)
  psi = resid[:, 0] - resid[:, 1]  # [G, L]
  n = xp.maximum(big_n, 1)
  xbar = xp.einsum("ga,gl->al", unit_n, x) / n[:, None]  # [2, L]
  xres = unit_n[..., None] * (x[:, None, :] - xbar[None]) / n[None, :, None]  # [G, 2, L]
  phi = xres[:, 0] - xres[:, 1]
  g = xp.sum(xp.sum(unit_n, axis=1) > 0)
  factor = g / xp.maximum(g - 1, 1)
  ok = xp.all(big_n > 0) & (g > 1)
  return tuple(xp.where(ok, v, xp.nan) for v in (
      xbar[0] - xbar[1], xp.sum(psi * phi, axis=0) * factor, xp.sum(phi * phi, axis=0) * factor))


def arm_clustered_variance(unit_sum, unit_n, xp=np):
  """(variance [L], degrees of freedom [L]) of the naive estimate when every unit lies in one
  arm (clusters, switchback periods): the two-sample (Welch) form on units.

  With psi_i as in clustered_variance, each arm's part is V_a = G_a / (G_a - 1) sum over its
  G_a units of their residual's square (the small-sample factor of that arm's own units, not
  of all G: with 3 treated clusters of 20, CR1's 20/19 leaves that part 1.5x too small), and
  df = (V_T + V_C)^2 / (V_T^2 / (G_T - 1) + V_C^2 / (G_C - 1)) (Welch-Satterthwaite), between
  min(G_T, G_C) - 1 and G_T + G_C - 2. Both NaN where an arm has fewer than 2 units with a
  recommendation (its part is not estimable).
  """
  resid, _ = _residuals(unit_sum, unit_n, xp)
  g_arm = xp.sum(unit_n > 0, axis=0).astype(resid.dtype)  # [2]
  part = (xp.sum(resid * resid, axis=0) * (g_arm / xp.maximum(g_arm - 1, 1))[:, None])
  var = xp.sum(part, axis=0)
  denom = xp.sum(part * part / xp.maximum(g_arm - 1, 1)[:, None], axis=0)
  ok = xp.all(g_arm >= 2)
  df = xp.where(ok & (denom > 0), var * var / xp.where(denom > 0, denom, 1), xp.nan)
  return xp.where(ok, var, xp.nan), df


@dataclasses.dataclass(frozen=True)
class Sums:
  """What every method may use of one point's experiment."""
  outcome_sum: np.ndarray  # [T, B, 2, L] per-step sums (arm 0 = T, 1 = C).
  n_recs: np.ndarray  # [T, B, 2] per-step recommendations.
  n: np.ndarray  # [B, 2, 1] recommendations per arm.
  var: np.ndarray  # [B, 2, L] per-recommendation variance of each arm's outcome.
  user_var: np.ndarray | None  # [B, L] user-clustered variance, or None.
  unit_var: np.ndarray | None  # [B, L] variance with the design's units, or None.
  unit_df: np.ndarray | None  # [B, L] its degrees of freedom, or None.
  n_blocks: int  # K of the batch-means method.

  @property
  def blocks(self) -> int:
    return min(self.n_blocks, self.outcome_sum.shape[0])


def _welch(s: Sums, est):
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.sqrt(s.var[:, 0] / s.n[:, 0] + s.var[:, 1] / s.n[:, 1])


def _user(s: Sums, est):
  return (np.sqrt(np.asarray(s.user_var, np.float64)) if s.user_var is not None
          else np.full_like(est, np.nan))


def _batch(s: Sums, est):
  k = s.blocks
  blocks = [(s.outcome_sum[b].astype(np.float64).sum(0), s.n_recs[b].astype(np.float64).sum(0))
            for b in np.array_split(np.arange(s.outcome_sum.shape[0]), k)]
  block_mean = np.stack([_mean(t, c[..., None]) for t, c in blocks])  # [K, B, 2, L]
  block_est = block_mean[:, :, 0] - block_mean[:, :, 1]
  return block_est.std(axis=0, ddof=1) / np.sqrt(k) if k > 1 else np.full_like(est, np.nan)


def _unit(s: Sums, est):
  if s.unit_var is None:
    return np.full_like(est, np.nan)
  se = np.sqrt(np.asarray(s.unit_var, np.float64))
  return np.where(np.isfinite(s.unit_df), se, np.nan)  # Undefined with < 2 units in an arm.


def _unit_quantile(s: Sums, level: float):
  if s.unit_df is None:
    return np.nan
  df = np.asarray(s.unit_df, np.float64)
  ok = np.isfinite(df)
  return np.where(ok, stats.t.ppf(0.5 + level / 2, np.where(ok, df, 1.0)), np.nan)


def _normal(s: Sums, level: float) -> float:
  return stats.norm.ppf(0.5 + level / 2)


@dataclasses.dataclass(frozen=True)
class Method:
  """A standard-error method: se(sums, estimate) -> [B, L]; quantile(sums, level) -> a
  number or [B, L]."""
  se: Callable
  quantile: Callable


METHODS = {
    "welch": Method(_welch, _normal),
    "user": Method(_user, _normal),
    "batch": Method(_batch, lambda s, level: stats.t.ppf(0.5 + level / 2, max(s.blocks - 1, 1))),
    "unit": Method(_unit, _unit_quantile),
}
