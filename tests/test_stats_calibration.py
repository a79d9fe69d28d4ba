"""The study's interval statistics: Wilson shares, inflation factors net of the truth's
noise (with bootstrap and out-of-sample checks), decisions, paired design differences."""

import numpy as np
import pytest
from scipy import stats

from gtesim.stats import calibration
from gtesim.stats import decision
from gtesim.stats import intervals
from gtesim.stats import paired


@pytest.fixture
def gen():
  return np.random.default_rng(0)


def test_wilson_interval_matches_the_closed_form():
  for k, n in ((5, 100), (0, 50), (11, 100), (200, 200)):
    z = stats.norm.ppf(0.975)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    np.testing.assert_allclose(intervals.wilson(k, n), [centre - half, centre + half],
                               atol=1e-12)
  # 11 of 100 rejections: 0.05 is outside the interval (P(>= 11 | 0.05) = 0.012).
  assert intervals.wilson(11, 100)[0] > 0.05


def _draws(gen, n, factor, truth_sd):
  se = gen.uniform(0.5, 1.5, n)
  d = gen.normal(0, factor * se) + gen.normal(0, truth_sd * se)
  return d, se, np.full(n, stats.norm.ppf(0.975)), truth_sd * se


def test_inflation_factor_recovers_the_understatement_net_of_the_truth_noise(gen):
  """Errors whose sd is 1.5 x the SE, plus truth noise as large as the SE: the factor is
  1.5 (not the 1.8 the raw errors suggest), its order-statistic interval holds 1.5 at least
  95% of the time (the bootstrap's about as often at B = 200), and the out-of-sample coverage
  is about 0.95."""
  trials, held, held_boot, oos, raw = 150, 0, 0, [], []
  for t in range(trials):
    d, se, q, s = _draws(gen, 200, 1.5, 1.0)
    r = calibration.inflation(d, se, q, s, seed=t, n_boot=500)
    held += r["ci"][0] <= 1.5 <= r["ci"][1]
    held_boot += r["ci_bootstrap"][0] <= 1.5 <= r["ci_bootstrap"][1]
    oos.append(r["oos"]["coverage"])
    raw.append(calibration.inflation(d, se, q, 0 * s, seed=t, n_boot=0)["factor"])
  assert held / trials > 0.91, held / trials  # >= 0.95 in expectation; MC se 0.018.
  assert abs(held_boot / trials - 0.95) < 0.06, held_boot / trials
  assert abs(np.mean(oos) - 0.95) < 0.01, np.mean(oos)
  assert np.mean(raw) > 1.7  # Ignoring the truth's noise overstates the factor.


def test_net_coverage_is_nominal_for_a_right_se_and_a_noisy_truth(gen):
  d, se, q, s = _draws(gen, 20000, 1.0, 1.0)
  ci = np.stack([d - q * se, d + q * se], 1)  # Intervals around est = T + d, truth at 0.
  plain = np.mean((ci[:, 0] <= 0) & (0 <= ci[:, 1]))
  net = calibration.net_coverage(d, se, q, s)
  assert plain < 0.87  # The truth's noise alone makes a right SE look too narrow.
  assert net["ci"][0] < 0.95 < net["ci"][1] or abs(net["value"] - 0.95) < 0.005
  assert calibration.net_variance(d, s) == pytest.approx(np.mean(se ** 2), rel=0.05)


def test_paired_summarises_a_method_where_it_is_defined_and_counts_it(gen):
  b = 60
  truth = gen.normal(2.0, 0.1, b)
  est = truth + gen.normal(0, 1, b)
  se = {m: np.ones(b) for m in ("welch", "user", "batch", "unit")}
  se["unit"] = np.where(np.arange(b) < 15, np.nan, 1.0)
  ci = {m: np.stack([est - 1.96 * v, est + 1.96 * v], 1) for m, v in se.items()}
  out = paired.paired(est, truth, se, ci, seed=0, n_boot=200)
  assert out["n_method"] == {"welch": b, "user": b, "batch": b, "unit": b - 15}
  ok = np.arange(b) >= 15
  hit = np.abs(est - truth) <= 1.96
  assert out["coverage"]["unit"] == pytest.approx(hit[ok].mean())
  assert out["coverage_ci"]["unit"] == intervals.wilson(hit[ok].sum(), b - 15)
  assert out["decision"]["unit"]["power"]["n"] == b - 15
  assert out["bias_pct_ci"][0] < out["bias_pct"] < out["bias_pct_ci"][1]


def test_decisions_count_launches_power_and_confident_wrong_signs():
  est = np.array([1.0, 2.0, -1.0, 0.5, -3.0])
  truth = np.array([1.0, 1.0, 1.0, -1.0, -1.0])
  ci = np.array([[0.1, 1.9], [-0.5, 4.5], [-1.5, -0.2], [0.2, 0.8], [-4.0, -2.0]])
  out = decision.decisions(est, truth, ci)
  assert out["sign_agree"]["value"] == pytest.approx(3 / 5)
  assert out["power"]["k"] == 2  # Rows 0 and 4.
  assert out["wrong_significant"]["k"] == 2  # Rows 2 and 3.
  assert out["launch"]["k"] == 2  # Rows 0 and 3.


def test_paired_difference_uses_common_resamples(gen):
  """Two designs with the same repetition noise: the paired difference's se is far below
  either design's own bias se, and the RMSE difference's interval holds the true one."""
  common = gen.normal(0, 1, 300)
  d_x = common + 0.3 + gen.normal(0, 0.1, 300)
  d_y = common + gen.normal(0, 0.1, 300)
  out = paired.difference(d_x, d_y, seed=0, n_boot=1000)
  assert out["bias_se"] < 0.2 * common.std() / np.sqrt(300)
  assert out["bias_ci"][0] < 0.3 < out["bias_ci"][1]
  true_diff = np.sqrt(1 + 0.01 + 0.09) - np.sqrt(1 + 0.01)
  assert out["rmse_ci"][0] < true_diff < out["rmse_ci"][1]
  assert out["bias_p"] < 1e-6


def test_quantile_interval_is_distribution_free(gen):
  """The order-statistic interval of the 95% quantile holds it >= 95% of the time; with 20
  repetitions it cannot close above (infinite)."""
  true_q = stats.expon.ppf(0.95)
  held = sum(lo <= true_q <= hi for lo, hi in
             (calibration.quantile_ci(gen.exponential(1, 200)) for _ in range(1000)))
  assert held / 1000 > 0.935
  assert calibration.quantile_ci(gen.exponential(1, 20))[1] == np.inf
