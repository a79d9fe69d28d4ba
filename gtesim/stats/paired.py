"""Paired statistics of a design's estimates against each repetition's own truth (SPEC §6).

Repetition b's estimate est_b and its true GTE_b come from the same split, production model
and random numbers, so the error d_b = est_b - GTE_b is what a design gets wrong in that
repetition. Everything here is computed from the per-repetition arrays.
"""

import numpy as np

from gtesim.stats.variance import METHODS


def _sd(x):
  return float(np.std(x, ddof=1)) if len(x) > 1 else float("nan")


def paired(est, truth, se: dict, ci: dict) -> dict:
  """Bias, its paired SE, RMSE, coverage and variance inflation per method.

  Args:
    est, truth: [B] estimates and the repetitions' own true GTE.
    se: {method: [B]} standard errors; ci: {method: [B, 2]} intervals.

  Returns:
    bias = mean(d), bias_se = sd(d)/sqrt(B), bias_pct = 100 bias / mean(truth) (its se:
    bias_se alone, the truth mean's own uncertainty left out),
    wrong_sign = share of repetitions whose estimate's sign differs from mean(truth)'s (NaN
    when mean(truth) is 0: the A/A), wrong_sign_own = share whose sign differs from their own
    repetition's truth (repetitions with a zero truth left out; NaN in the A/A), rmse = sqrt(mean(d^2)), sd (of est), sd_truth,
    sd_error = sd(d), coverage[m] = share of intervals holding GTE_b, mean_se[m], and
    vif[m] = sd(d) / mean(se_m): the factor by which method m's SE understates the error.
    A method's entries are NaN where its SE is undefined. Repetitions with an undefined
    estimate are left out (`B` counts the others, `n_undefined` them).
  """
  est, truth = np.asarray(est, np.float64), np.asarray(truth, np.float64)
  # A repetition whose estimate is undefined (an arm without recommendations, e.g. no treated
  # cluster at small p) is left out and counted.
  defined = np.isfinite(est) & np.isfinite(truth)
  n_undefined = int((~defined).sum())
  est, truth = est[defined], truth[defined]
  se = {m: np.asarray(v, np.float64)[defined] for m, v in se.items()}
  ci = {m: np.asarray(v, np.float64)[defined] for m, v in ci.items()}
  d = est - truth
  b = len(d)
  out = {"B": b, "n_undefined": n_undefined, "mean": float(est.mean()) if b else float("nan"),
         "truth_mean": float(truth.mean()) if b else float("nan"),
         "bias": float(d.mean()) if b else float("nan"),
         "bias_se": _sd(d) / np.sqrt(b) if b else float("nan"),
         "rmse": float(np.sqrt(np.mean(d * d))) if b else float("nan"), "sd": _sd(est), "sd_truth": _sd(truth),
         "sd_error": _sd(d), "coverage": {}, "mean_se": {}, "vif": {}}
  truth_mean = out["truth_mean"]
  nonzero = b > 0 and truth_mean != 0
  out["bias_pct"] = 100 * out["bias"] / truth_mean if nonzero else float("nan")
  out["bias_pct_se"] = 100 * out["bias_se"] / abs(truth_mean) if nonzero else float("nan")
  out["wrong_sign"] = (float(np.mean(np.sign(est) != np.sign(truth_mean))) if nonzero
                       else float("nan"))
  signed = truth != 0
  out["wrong_sign_own"] = (float(np.mean(np.sign(est[signed]) != np.sign(truth[signed])))
                           if signed.any() else float("nan"))
  for m in METHODS:
    s, c = np.asarray(se[m], np.float64), np.asarray(ci[m], np.float64)
    ok = b > 0 and np.isfinite(s).all()
    out["mean_se"][m] = float(s.mean()) if ok else float("nan")
    out["coverage"][m] = (float(np.mean((c[:, 0] <= truth) & (truth <= c[:, 1])))
                          if ok else float("nan"))
    out["vif"][m] = (out["sd_error"] / out["mean_se"][m] if ok and out["mean_se"][m] > 0
                     else float("nan"))
  return out
