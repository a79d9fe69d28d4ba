"""Statistics of the choice world's runs: each run's estimate and its standard errors, the
truths, and what a design's B runs show against them.

Every effect is take-up(algo1) - take-up(algo2). Targets:
- `truth_independent` (the source's): mean take-up of B all-algo1 runs minus that of B
  all-algo2 runs on independent seeds; its SE from the two samples' variances.
- `truth_paired` (gtesim's): per run b, the all-algo1 world minus the all-algo2 world on run
  b's seeds (same noise, same new-item orders), averaged; its SE over runs.
- `bias_pct`: 100 (mean estimate - truth_independent) / truth_independent, the source's
  definition; its 95% interval by the delta method with the estimate's and the truth's
  sampling errors independent (they come from different seeds).
- A run's standard errors: `user` (Welch over users' take-up rates: users as independent
  units), `cluster` (Welch over the clusters' mean rates, the cluster design), `period` (Welch
  over periods' arm shares, switchback). Coverage: the share of runs whose 95% normal interval
  holds `truth_paired`'s mean; the A/A type-I error is the share that excludes 0 when both
  arms rank alike.
"""

import numpy as np

Z95 = 1.959963984540054


def welch_se(a, b):
  """Welch's standard error of mean(a) - mean(b) (NaN with fewer than 2 in an arm)."""
  a, b = np.asarray(a, float), np.asarray(b, float)
  if len(a) < 2 or len(b) < 2:
    return np.nan
  return float(np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)))


def user_se(user_take, user_n):
  """[B] Welch over users: each user's take-up rate in the arm it was counted in."""
  out = []
  for take, n in zip(user_take, user_n):
    rates = [take[n[:, a] > 0, a] / n[n[:, a] > 0, a] for a in range(2)]
    out.append(welch_se(*rates))
  return np.array(out)


def cluster_se(user_take, user_n, clusters):
  """[B] Welch over clusters: each cluster's mean user rate, clusters by their arm."""
  out = []
  for take, n, label in zip(user_take, user_n, clusters):
    arms = ([], [])
    for c in np.unique(label):
      members = label == c
      a = int(np.argmax(n[members].sum(0)))
      arms[a].append(np.mean(take[members, a] / np.maximum(n[members, a], 1)))
    out.append(welch_se(*arms))
  return np.array(out)


def period_se(take, n, warmup: int):
  """[B] Welch over counted periods: each period's share of take-ups, periods by their arm."""
  out = []
  for tk, nn in zip(take[:, warmup:], n[:, warmup:]):
    arms = [tk[nn[:, a] > 0, a] / nn[nn[:, a] > 0, a] for a in range(2)]
    out.append(welch_se(*arms))
  return np.array(out)


def mean_se(x):
  """(mean, its standard error) of a sample."""
  x = np.asarray(x, float)
  return float(x.mean()), float(x.std(ddof=1) / np.sqrt(len(x)))


def truths(g1_paired, g2_paired, g1_ind, g2_ind) -> dict:
  """Both truths from [B] take-ups of the all-algo1 and all-algo2 worlds."""
  paired, paired_se = mean_se(np.asarray(g1_paired) - np.asarray(g2_paired))
  m1, s1 = mean_se(g1_ind)
  m2, s2 = mean_se(g2_ind)
  return {"truth_independent": m1 - m2, "truth_independent_se": float(np.hypot(s1, s2)),
          "truth_paired": paired, "truth_paired_se": paired_se,
          "take_up_algo1": m1, "take_up_algo2": m2}


def bias_pct(mean, mean_se_, truth, truth_se):
  """(bias %, 95% interval low, high) of `mean` against `truth` (delta method)."""
  if truth == 0:
    return np.nan, np.nan, np.nan
  ratio = mean / truth
  se = abs(ratio) * np.sqrt((mean_se_ / mean) ** 2 + (truth_se / truth) ** 2) if mean else (
      mean_se_ / abs(truth))
  return 100 * (ratio - 1), 100 * (ratio - Z95 * se - 1), 100 * (ratio + Z95 * se - 1)


def summary(estimates, ses: dict, truth: dict, paired_by_run=None) -> dict:
  """What B runs of a design show: the estimate, bias % (against the independent truth, as
  the source) with its interval, the bias against the paired truth, each SE method's coverage
  of the paired truth, and the wrong-sign rate.

  Args:
    estimates: [B] per-run estimates; ses: {method: [B] per-run SEs}.
    truth: truths(...); paired_by_run: [B] per-run paired truths (each run's own target).
  """
  est = np.asarray(estimates, float)
  m, m_se = mean_se(est)
  pct, lo, hi = bias_pct(m, m_se, truth["truth_independent"], truth["truth_independent_se"])
  target = truth["truth_paired"]
  out = {"B": len(est), "mean_estimate": m, "estimate_se": m_se, "estimate_sd": float(
      est.std(ddof=1)), "bias_pct": pct, "bias_pct_ci_low": lo, "bias_pct_ci_high": hi,
         "bias_vs_paired": m - target,
         "bias_vs_paired_se": float(np.hypot(m_se, truth["truth_paired_se"])),
         "wrong_sign_rate": float(np.mean(np.sign(est) != np.sign(target))) if target else
         np.nan}
  if paired_by_run is not None:
    d = est - np.asarray(paired_by_run, float)
    out["bias_vs_paired_runs"], out["bias_vs_paired_runs_se"] = mean_se(d)
  for name, se in ses.items():
    se = np.asarray(se, float)
    ok = np.isfinite(se)
    covered = np.abs(est[ok] - target) <= Z95 * se[ok]
    out[f"coverage_{name}"] = float(covered.mean()) if ok.any() else np.nan
    out[f"reject_zero_{name}"] = float((np.abs(est[ok]) > Z95 * se[ok]).mean()) if ok.any() \
        else np.nan
    out[f"mean_se_{name}"] = float(se[ok].mean()) if ok.any() else np.nan
  return out


SE_METHODS = {  # name -> (Runs, the runs' Draws, warm-up) -> [B] per-run standard errors.
    "user": lambda runs, draws, warmup: user_se(runs.user_take, runs.user_n),
    "cluster": lambda runs, draws, warmup: cluster_se(runs.user_take, runs.user_n,
                                                      [d.cluster for d in draws]),
    "period": lambda runs, draws, warmup: period_se(runs.take, runs.n, warmup),
}
