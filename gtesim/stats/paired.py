"""Paired statistics of a design's estimates against each repetition's own truth (SPEC §6).

Repetition b's estimate est_b and its truth T_b come from the same split and production
model (the truth: the mean of a study's K global replicates, whose draws are independent of
the design's), so the error d_b = est_b - T_b is what a design gets wrong in that repetition,
plus the truth's own noise (stats/calibration.py nets it out). Everything here is computed
from the per-repetition arrays; designs share every repetition's set-up, so two designs'
errors are paired too (`difference`).
"""

import numpy as np

from gtesim.stats import calibration
from gtesim.stats import decision
from gtesim.stats import intervals


def _sd(x):
  return float(np.std(x, ddof=1)) if len(x) > 1 else float("nan")


def _pct(d, truth):
  with np.errstate(invalid="ignore", divide="ignore"):
    return 100 * d.mean(-1) / truth.mean(-1)


def _rmse(d):
  return np.sqrt(np.mean(d * d, -1))


def paired(est, truth, se: dict, ci: dict, truth_se=None, seed: int = 0,
           n_boot: int = 0) -> dict:
  """Bias, its paired SE, RMSE, coverage, variance inflation and decisions per method.

  Args:
    est, truth: [B] estimates and the repetitions' own true GTE.
    se: {method: [B]} standard errors; ci: {method: [B, 2]} intervals.
    truth_se: [B] the truth's own SE (None: an exact truth), see stats/calibration.py.
    seed, n_boot: the bootstrap's (n_boot = 0: no bootstrap intervals, no inflation
      factors; the horizon's statistics).

  Returns:
    bias = mean(d), bias_se = sd(d)/sqrt(B), bias_ci (t), bias_pct = 100 bias / mean(truth)
    with bias_pct_ci (paired bootstrap of the ratio: the truth mean's uncertainty included),
    rmse with rmse_ci (bootstrap), wrong_sign = share of repetitions whose estimate's sign
    differs from mean(truth)'s (NaN when mean(truth) is 0: the A/A), wrong_sign_own = share
    whose sign differs from their own repetition's truth, sd (of est), sd_truth, sd_error =
    sd(d), truth_se_rms = sqrt(mean(s^2)), sd_error_net = sqrt(var(d) - mean(s^2)) (NaN when
    negative). Per method m, over the repetitions where m is defined (n_method[m] of them;
    a method undefined in some repetitions is summarised over the others, never dropped):
    coverage[m] = share of intervals holding T_b with coverage_ci[m] (Wilson),
    coverage_net[m] (the interval widened by the truth's noise) with coverage_net_ci[m],
    mean_se[m], vif[m] = sd(d) / mean(se_m), vif_net[m] = sd_error_net / mean(se_m),
    inflation[m] (calibration.inflation) and decision[m] (decision.decisions). Repetitions
    with an undefined estimate are left out (`B` counts the others, `n_undefined` them).
  """
  est, truth = np.asarray(est, np.float64), np.asarray(truth, np.float64)
  truth_se = (np.zeros_like(truth) if truth_se is None
              else np.asarray(truth_se, np.float64))
  defined = np.isfinite(est) & np.isfinite(truth) & np.isfinite(truth_se)
  n_undefined = int((~defined).sum())
  est, truth, truth_se = est[defined], truth[defined], truth_se[defined]
  se = {m: np.asarray(v, np.float64)[defined] for m, v in se.items()}
  ci = {m: np.asarray(v, np.float64).reshape(-1, 2)[defined] for m, v in ci.items()}
  d = est - truth
  b = len(d)
  nan = float("nan")
  out = {"B": b, "n_undefined": n_undefined, "mean": float(est.mean()) if b else nan,
         "truth_mean": float(truth.mean()) if b else nan,
         "bias": float(d.mean()) if b else nan,
         "bias_se": _sd(d) / np.sqrt(b) if b else nan,
         "bias_ci": intervals.mean_ci(d)["ci"],
         "rmse": float(np.sqrt(np.mean(d * d))) if b else nan, "sd": _sd(est),
         "sd_truth": _sd(truth), "sd_error": _sd(d),
         "truth_se_rms": float(np.sqrt(np.mean(truth_se ** 2))) if b else nan,
         "coverage": {}, "coverage_ci": {}, "coverage_net": {}, "coverage_net_ci": {},
         "n_method": {}, "mean_se": {}, "vif": {}, "vif_net": {}, "inflation": {},
         "decision": {}}
  net = calibration.net_variance(d, truth_se)
  out["sd_error_net"] = float(np.sqrt(net)) if net >= 0 else nan
  out["rmse_ci"] = intervals.bootstrap(_rmse, [d], seed, n_boot)["ci"]
  truth_mean = out["truth_mean"]
  nonzero = b > 0 and truth_mean != 0
  out["bias_pct"] = 100 * out["bias"] / truth_mean if nonzero else nan
  out["bias_pct_se"] = 100 * out["bias_se"] / abs(truth_mean) if nonzero else nan
  out["bias_pct_ci"] = (intervals.bootstrap(_pct, [d, truth], seed, n_boot)["ci"] if nonzero
                        else [nan, nan])
  out["wrong_sign"] = (float(np.mean(np.sign(est) != np.sign(truth_mean))) if nonzero
                       else nan)
  signed = truth != 0
  out["wrong_sign_own"] = (float(np.mean(np.sign(est[signed]) != np.sign(truth[signed])))
                           if signed.any() else nan)
  for m in se:  # The estimator's own SE methods (difference in means: variance.METHODS).
    s, c = se[m], ci[m]
    ok = np.isfinite(s) & np.isfinite(c).all(1) & (s > 0)
    n = int(ok.sum())
    out["n_method"][m] = n
    if n == 0:
      for key in ("coverage", "coverage_net", "mean_se", "vif", "vif_net"):
        out[key][m] = nan
      out["coverage_ci"][m] = out["coverage_net_ci"][m] = [nan, nan]
      continue
    dm, sm, cm, tm = d[ok], s[ok], c[ok], truth[ok]
    q = (cm[:, 1] - cm[:, 0]) / (2 * sm)
    cover = intervals.share((cm[:, 0] <= tm) & (tm <= cm[:, 1]))
    cover_net = calibration.net_coverage(dm, sm, q, truth_se[ok])
    out["coverage"][m], out["coverage_ci"][m] = cover["value"], cover["ci"]
    out["coverage_net"][m], out["coverage_net_ci"][m] = cover_net["value"], cover_net["ci"]
    out["mean_se"][m] = float(sm.mean())
    out["vif"][m] = _sd(dm) / out["mean_se"][m]
    net_m = calibration.net_variance(dm, truth_se[ok])
    out["vif_net"][m] = float(np.sqrt(net_m)) / out["mean_se"][m] if net_m >= 0 else nan
    out["decision"][m] = decision.decisions(est[ok], tm, cm)
    if n_boot:
      out["inflation"][m] = calibration.inflation(dm, sm, q, truth_se[ok], seed, n_boot)
  return out


def difference(d_x, d_y, seed: int, n_boot: int) -> dict:
  """Design x minus design y over the repetitions where both are defined: the bias
  difference (mean of d_x - d_y, its paired se and t interval, two-sided p) and the RMSE
  difference (paired bootstrap se and interval)."""
  d_x, d_y = np.asarray(d_x, np.float64), np.asarray(d_y, np.float64)
  ok = np.isfinite(d_x) & np.isfinite(d_y)
  d_x, d_y = d_x[ok], d_y[ok]
  bias = intervals.mean_ci(d_x - d_y)
  rmse = intervals.bootstrap(lambda x, y: _rmse(x) - _rmse(y), [d_x, d_y], seed, n_boot)
  return {"n": int(ok.sum()), "bias": bias["value"], "bias_se": bias["se"],
          "bias_ci": bias["ci"], "bias_p": intervals.z_p(bias["value"], bias["se"]),
          "rmse": rmse["value"], "rmse_se": rmse["se"], "rmse_ci": rmse["ci"]}
