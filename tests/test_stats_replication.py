"""The choice world's statistics (gtesim/stats/replication.py): Welch's SE, the per-run SEs by
users, clusters and periods, both truths, bias % and its interval, and coverage."""

import numpy as np
import pytest
from scipy import stats as sps

from gtesim.stats import replication as rs
from gtesim.study import replication_report as report


def test_welch_se_is_scipys():
  gen = np.random.default_rng(0)
  a, b = gen.normal(0, 1, 30), gen.normal(1, 3, 17)
  t = sps.ttest_ind(a, b, equal_var=False)
  assert np.isclose(rs.welch_se(a, b), (a.mean() - b.mean()) / t.statistic)
  assert np.isnan(rs.welch_se([1.0], b))


def test_per_run_standard_errors_by_unit():
  gen = np.random.default_rng(1)
  n_users, periods = 40, 8
  arm = np.arange(n_users) % 2
  user_n = np.zeros((1, n_users, 2))
  user_n[0, np.arange(n_users), arm] = periods
  user_take = user_n * gen.random((1, n_users, 1))
  rates = user_take[0, np.arange(n_users), arm] / periods
  assert np.isclose(rs.user_se(user_take, user_n)[0],
                    rs.welch_se(rates[arm == 0], rates[arm == 1]))
  label = np.arange(n_users) // 4  # Ten clusters of 4 users; a cluster's users share an arm.
  arm_c = label % 2
  user_n = np.zeros((1, n_users, 2))
  user_n[0, np.arange(n_users), arm_c] = periods
  user_take = user_n * gen.random((1, n_users, 1))
  means = [np.mean(user_take[0, label == c, c % 2] / periods) for c in range(10)]
  assert np.isclose(rs.cluster_se(user_take, user_n, [label])[0],
                    rs.welch_se(means[0::2], means[1::2]))
  take = gen.integers(0, 10, (1, 12, 2)).astype(float)
  n = np.zeros((1, 12, 2))
  on = gen.integers(0, 2, 12)
  n[0, np.arange(12), on] = 10
  take *= n > 0
  share = take[0, np.arange(12), on] / 10
  assert np.isclose(rs.period_se(take, n, 2)[0],
                    rs.welch_se(share[2:][on[2:] == 0], share[2:][on[2:] == 1]))


def test_truths_bias_and_coverage():
  gen = np.random.default_rng(2)
  g1, g2 = gen.normal(0.3, 0.02, 4000), gen.normal(0.2, 0.02, 4000)
  truth = rs.truths(g1, g2, g1[::-1], g2)
  assert np.isclose(truth["truth_paired"], np.mean(g1 - g2))
  assert np.isclose(truth["truth_independent"], g1.mean() - g2.mean())
  # Estimates unbiased for the paired truth with correct SEs: coverage ~ 0.95 and bias % ~ 0.
  est = truth["truth_paired"] + gen.normal(0, 0.05, 4000)
  out = rs.summary(est, {"user": np.full(4000, 0.05)}, truth)
  assert abs(out["coverage_user"] - 0.95) < 3 * np.sqrt(0.95 * 0.05 / 4000)
  assert out["bias_pct_ci_low"] < 0 < out["bias_pct_ci_high"]
  # Off by 60% of the truth: bias % -60, its interval holding it and excluding 0.
  out = rs.summary(0.4 * est, {"user": np.full(4000, 0.05)}, truth)
  assert abs(out["bias_pct"] + 60) < 3 and out["bias_pct_ci_high"] < 0
  assert out["bias_pct_ci_low"] < out["bias_pct"] < out["bias_pct_ci_high"]
  width = out["bias_pct_ci_high"] - out["bias_pct_ci_low"]
  # Delta method: 100 * 1.96 * 2 * ratio * rel. SE (estimate's and truth's).
  ratio = out["mean_estimate"] / truth["truth_independent"]
  rel = np.hypot(out["estimate_se"] / out["mean_estimate"],
                 truth["truth_independent_se"] / truth["truth_independent"])
  assert np.isclose(width, 2 * 100 * rs.Z95 * abs(ratio) * rel)
  # Zero effect with correct SEs: the rejection rate is the test's level.
  out = rs.summary(gen.normal(0, 0.05, 4000), {"user": np.full(4000, 0.05)}, truth)
  assert abs(out["reject_zero_user"] - 0.05) < 3 * np.sqrt(0.05 * 0.95 / 4000)


def test_the_reports_paired_bias_interval_covers_and_rates_are_whole_counts():
  """ratio_ci's 95% interval of E[e] / E[t] - 1 from paired, correlated runs covers the true
  +20% in about 95% of 400 simulated studies of B = 200, se_to_sd's covers 1 for an exact SE
  as often; rate() refuses a share that is not a count of its n."""
  gen = np.random.default_rng(0)
  covered = 0
  for _ in range(400):
    t = 0.1 + 0.03 * gen.standard_normal(200)
    e = 1.2 * t + 0.02 * gen.standard_normal(200)  # Correlated with its run's truth.
    _, lo, hi = report.ratio_ci(e, t)
    covered += lo <= 20 <= hi
  assert 0.92 <= covered / 400 <= 0.98
  hits = 0
  for _ in range(400):  # An SE equal to the true sd: the ratio's interval covers 1.
    e = 0.3 * gen.standard_normal(200)
    _, lo, hi = report.se_to_sd(0.3, e.std(ddof=1), 200)
    hits += lo <= 1 <= hi
  assert 0.92 <= hits / 400 <= 0.98
  assert report.rate(0.25, 200)[0] == 50
  k, lo, hi = report.rate(0.0, 200)
  assert k == 0 and lo == 0 and 0.01 < hi < 0.02
  with pytest.raises(ValueError, match="not a count"):
    report.rate(0.2501, 200)
