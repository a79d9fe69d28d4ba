"""Intervals of a study's statistics: Wilson for shares, paired bootstrap over repetitions.

A study's B repetitions are independent draws of one experiment, so a share of them (type-I
error, coverage, power) is a binomial proportion (Wilson interval), and any other statistic
of them (a bias as % of the truth, an RMSE, an inflation factor) gets a percentile bootstrap
interval from resampling whole repetitions. The resamples of n repetitions depend on
(seed, n) only, so every statistic over the same repetitions (two designs' RMSE, say) uses
the same resamples: their difference is a paired bootstrap.
"""

import functools

import numpy as np
from scipy import stats

LEVEL = 0.95  # Every interval of a study is a 95% interval.


def wilson(k: int, n: int, level: float = LEVEL) -> list:
  """[lo, hi] Wilson interval of k successes in n trials ([NaN, NaN] when n is 0)."""
  if n == 0:
    return [float("nan"), float("nan")]
  ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method="wilson")
  return [float(ci.low), float(ci.high)]


def share(hit) -> dict:
  """A share of repetitions with its Wilson interval: {"value", "ci", "k", "n"}."""
  hit = np.asarray(hit, bool)
  n, k = int(hit.size), int(hit.sum())
  return {"value": k / n if n else float("nan"), "ci": wilson(k, n), "k": k, "n": n}


@functools.lru_cache(maxsize=64)
def _resamples(seed: int, n: int, n_boot: int) -> np.ndarray:
  rng = np.random.default_rng([seed, n, n_boot])
  index = rng.integers(0, n, size=(n_boot, n))
  index.setflags(write=False)
  return index


def resamples(seed: int, n: int, n_boot: int) -> np.ndarray:
  """[n_boot, n] indices of bootstrap resamples of n repetitions (the same for the same
  (seed, n, n_boot))."""
  return _resamples(int(seed), int(n), int(n_boot))


def percentile(values, level: float = LEVEL) -> list:
  """[lo, hi] of the finite bootstrap values ([NaN, NaN] when fewer than half are)."""
  values = np.asarray(values, np.float64)
  values = values[np.isfinite(values)]
  if values.size == 0 or values.size < 0.5 * np.size(values):
    return [float("nan"), float("nan")]
  a = (1 - level) / 2
  return [float(np.quantile(values, a)), float(np.quantile(values, 1 - a))]


def bootstrap(statistic, arrays, seed: int, n_boot: int) -> dict:
  """A statistic of per-repetition arrays and its percentile bootstrap interval.

  Args:
    statistic: f(*arrays) -> number, where each array is [n] or, for the resamples, [R, n]
      (it must reduce the last axis).
    arrays: per-repetition arrays, [n] each, of the same repetitions.

  Returns:
    {"value", "ci", "se"}: se is the sd of the bootstrap values.
  """
  arrays = [np.asarray(a, np.float64) for a in arrays]
  n = arrays[0].shape[-1]
  value = float(statistic(*arrays)) if n else float("nan")
  if n < 2 or n_boot == 0:
    return {"value": value, "ci": [float("nan")] * 2, "se": float("nan")}
  index = resamples(seed, n, n_boot)
  with np.errstate(invalid="ignore", divide="ignore"):
    boot = np.asarray(statistic(*[a[index] for a in arrays]), np.float64)
  finite = boot[np.isfinite(boot)]
  return {"value": value, "ci": percentile(boot),
          "se": float(np.std(finite, ddof=1)) if finite.size > 1 else float("nan")}


def mean_ci(x, level: float = LEVEL) -> dict:
  """A mean over repetitions with its t interval: {"value", "se", "ci", "n"}."""
  x = np.asarray(x, np.float64)
  n = x.size
  if n < 2:
    return {"value": float(x.mean()) if n else float("nan"), "se": float("nan"),
            "ci": [float("nan")] * 2, "n": n}
  m, se = float(x.mean()), float(x.std(ddof=1) / np.sqrt(n))
  q = stats.t.ppf(0.5 + level / 2, n - 1)
  return {"value": m, "se": se, "ci": [m - q * se, m + q * se], "n": n}


def z_p(value: float, se: float) -> float:
  """Two-sided normal p-value of value / se (NaN without a positive se)."""
  if not np.isfinite(se) or se <= 0 or not np.isfinite(value):
    return float("nan")
  return float(2 * stats.norm.sf(abs(value) / se))
