"""Calibration of a standard error under treatment, net of the truth's own noise.

Repetition b's error is d_b = est_b - T_b, where the truth T_b (the mean of K global
replicates) is itself noisy around the repetition's target (the expected GT - GC of its
production model): T_b = target_b + u_b, u_b independent of est_b (the replicates' draws are
independent of the design's) with known variance s_b^2 (the truth's SE). So

- var(est - target) = var(d) - mean(s^2): the net variance; vif_net = its sqrt / mean(se);
- the interval est_b ± q_b sqrt(se_b^2 + s_b^2) holds T_b whenever est_b ± q_b se_b holds the
  target, when the errors are normal: its share of repetitions that hold T_b is the
  coverage net of the truth's noise (with s = 0 it is the plain coverage);
- the inflation factor c of a method is the smallest c with est_b ± q_b sqrt(c^2 se_b^2 +
  s_b^2) holding T_b in a share >= 95% of repetitions: c_b = sqrt(max(d_b^2 / q_b^2 - s_b^2,
  0)) / se_b is repetition b's own factor and c their ceil(0.95 n)-th smallest: an estimate
  of the 95% quantile of the c_b. Its interval is the distribution-free one of a quantile
  (order statistics c_(l), c_(u) with l, u from Binomial(n, 0.95): at least 95% coverage for
  independent repetitions; infinite above when n is too small for it to close), with a
  percentile bootstrap over repetitions beside it (`ci_bootstrap`: it cannot reach above the
  sample's largest factors, so with few repetitions it is too short). Checked out of sample:
  the repetitions are split into two random halves, each half's coverage measured with the
  factor fitted on the other, both halves' hits pooled (a Wilson interval over all of them).

The docs (docs/statistics.md) give these formulas and the wording rules they support.
"""

import numpy as np
from scipy import stats

from gtesim.stats import intervals

COVER = 0.95


def own_factors(d, se, q, truth_se) -> np.ndarray:
  """[n] c_b: the factor repetition b's SE needs for its interval to hold its truth."""
  d, se, q, s = (np.asarray(x, np.float64) for x in (d, se, q, truth_se))
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.sqrt(np.maximum(d * d / (q * q) - s * s, 0.0)) / se


def _factor(c, axis=-1):
  """The ceil(0.95 n)-th smallest of c along `axis`."""
  n = c.shape[axis]
  k = int(np.ceil(COVER * n)) - 1
  return np.take(np.sort(c, axis=axis), k, axis=axis)


def quantile_ci(values, quantile: float = COVER, level: float = intervals.LEVEL) -> list:
  """Distribution-free [lo, hi] of a quantile from order statistics (hi is inf when n is
  too small for the upper order statistic to exist)."""
  x = np.sort(np.asarray(values, np.float64))
  n = x.size
  a = (1 - level) / 2
  lo = int(stats.binom.ppf(a, n, quantile))  # 1-indexed order statistics l and u.
  hi = int(stats.binom.ppf(1 - a, n, quantile)) + 1
  return [float(x[lo - 1]) if lo >= 1 else 0.0, float(x[hi - 1]) if hi <= n else float("inf")]


def inflation(d, se, q, truth_se, seed: int, n_boot: int) -> dict:
  """The inflation factor of one method with its bootstrap interval and out-of-sample check.

  Args:
    d: [n] errors est_b - T_b; se: [n] the method's SE; q: [n] its quantile (1.96, or t);
      truth_se: [n] the truth's SE (0 where the truth is exact). Repetitions where any is
      undefined must be left out by the caller.

  Returns:
    {"factor", "ci" (order statistics), "ci_bootstrap", "n", "oos": {"coverage", "ci",
    "factors"}} (NaN with fewer than 4 repetitions).
  """
  c = own_factors(d, se, q, truth_se)
  n = c.size
  nan2 = [float("nan")] * 2
  if n < 4 or not np.isfinite(c).all():
    return {"factor": float("nan"), "ci": nan2, "ci_bootstrap": nan2, "n": n,
            "oos": {"coverage": float("nan"), "ci": nan2, "factors": nan2}}
  boot = intervals.bootstrap(_factor, [c], seed, n_boot)
  rng = np.random.default_rng([seed, n, 1])
  order = rng.permutation(n)
  halves = [order[: n // 2], order[n // 2:]]
  fitted = [float(_factor(c[h])) for h in halves]
  hits = np.concatenate([c[halves[1]] <= fitted[0], c[halves[0]] <= fitted[1]])
  oos = intervals.share(hits)
  return {"factor": float(_factor(c)), "ci": quantile_ci(c), "ci_bootstrap": boot["ci"], "n": n,
          "oos": {"coverage": oos["value"], "ci": oos["ci"], "factors": fitted}}


def net_variance(d, truth_se) -> float:
  """var(d) - mean(s^2): the error variance net of the truth's noise (may be < 0 by chance)."""
  d = np.asarray(d, np.float64)
  if d.size < 2:
    return float("nan")
  return float(np.var(d, ddof=1) - np.mean(np.asarray(truth_se, np.float64) ** 2))


def net_coverage(d, se, q, truth_se) -> dict:
  """The share whose interval widened by the truth's noise holds T_b (Wilson interval)."""
  return intervals.share(own_factors(d, se, q, truth_se) <= 1.0)
