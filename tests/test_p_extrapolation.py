"""The traffic-share extrapolation estimator: exact where the arm means are polynomials in p by
construction, calibrated standard errors where the data are independent, refused where the
sweep cannot identify it, and scored in a run's result.json."""

import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats

from conftest import small_sim_config
from gtesim.config import checks
from gtesim.designs import SweepPoint
from gtesim.driver import simulate
from gtesim.errors import InputError
from gtesim.stats import estimators
from gtesim.stats.estimators.p_extrapolation import PExtrapolation, extrapolation_weights

PS = (0.2, 0.5, 0.8)


def _data(mean_t, mean_c, gen, n_steps=20, reps=3, noise=0.0, ps=PS, point=0):
  """RunData of a run whose arm means at each p are mean_t(p), mean_c(p) ([reps, L] each),
  with random recommendation counts (and i.i.d. noise of sd `noise` per recommendation)."""
  n_labels = mean_t(ps[0]).shape[-1]
  w = len(ps)
  n = gen.integers(5, 40, (n_steps, reps, w, 2)).astype(np.float32)
  mean = np.stack([np.stack([mean_t(p), mean_c(p)], 1) for p in ps], 1)  # [B, W, 2, L]
  total = n[..., None] * mean[None]
  sq = n[..., None] * mean[None] ** 2
  if noise:  # A step's sum of n i.i.d. N(mean, noise^2) draws; E[sum of squares] likewise.
    total = total + np.moveaxis(gen.normal(0, noise * np.sqrt(n), (n_labels,) + n.shape), 0, -1)
    sq = sq + n[..., None] * noise ** 2
  steps = SimpleNamespace(outcome_sum=total, outcome_sq=sq, n_recs=n)
  points = tuple(SweepPoint(p, 1.0) for p in ps)
  return estimators.RunData(SimpleNamespace(steps=steps), None, points, point, n_steps, -1)


def test_exact_where_the_arm_means_are_linear_or_quadratic_in_p():
  gen = np.random.default_rng(0)
  a_t, b_t, a_c, b_c, q = (gen.normal(size=(3, 2)) for _ in range(5))
  linear = _data(lambda p: a_t + b_t * p, lambda p: a_c + b_c * p, gen)
  for point in range(3):  # Every point of the sweep gets the run's estimate.
    out = PExtrapolation("linear").estimate(dataclasses.replace(linear, point=point), 4, 0.95)
    np.testing.assert_allclose(out["estimate"], (a_t + b_t) - a_c, rtol=1e-6, atol=1e-6)
  quad = _data(lambda p: a_t + b_t * p + q * p * p, lambda p: a_c + b_c * p - q * p * p, gen)
  np.testing.assert_allclose(PExtrapolation("quadratic").estimate(quad, 4, 0.95)["estimate"],
                             (a_t + b_t + q) - a_c, rtol=1e-5, atol=1e-5)
  # The linear form on quadratic means is not exact: the test can fail.
  off = PExtrapolation("linear").estimate(quad, 4, 0.95)["estimate"] - ((a_t + b_t + q) - a_c)
  assert np.abs(off).min() > 1e-3
  np.testing.assert_allclose(extrapolation_weights((0.2, 0.8), 1.0, 1), [-1 / 3, 4 / 3])
  np.testing.assert_allclose(extrapolation_weights((0.2, 0.8), 0.0, 1), [4 / 3, -1 / 3])


def test_both_standard_errors_cover_where_recommendations_and_points_are_independent():
  gen = np.random.default_rng(1)
  reps = 4000
  data = _data(lambda p: np.full((reps, 1), 0.3 + 0.2 * p), lambda p: np.full((reps, 1), 0.1),
               gen, n_steps=20, reps=reps, noise=1.0)
  out = PExtrapolation("linear").estimate(data, 10, 0.95)
  truth = 0.5 - 0.1
  sd = out["estimate"].std()
  for m in ("welch", "batch"):
    ci = out["ci"][m][:, 0]
    cover = np.mean((ci[:, 0] <= truth) & (truth <= ci[:, 1]))
    assert abs(cover - 0.95) < 4 * np.sqrt(0.95 * 0.05 / reps), (m, cover)
    assert np.median(out["se"][m]) == pytest.approx(sd, rel=0.1 if m == "batch" else 0.05)
  assert stats.ttest_1samp(out["estimate"][:, 0], truth).pvalue > 1e-3  # Unbiased.


def test_a_sweep_that_cannot_identify_it_is_refused(tiny_root):
  config = small_sim_config(tiny_root, mode="pooling")
  config.estimator.names = ("p_extrapolation",)
  with pytest.raises(InputError, match="sweep.p_treatment"):
    checks.check(config)
  config.sweep.p_treatment = (0.3, 0.7)
  checks.check(config)
  config.estimator.p_extrapolation.form = "quadratic"
  with pytest.raises(InputError, match="at least 3 distinct"):
    checks.check(config)
  config.estimator.p_extrapolation.form = "linear"
  config.sweep.p_treatment = ()
  config.sweep.points = ((0.3, 1.0), (0.7, 1.0), (0.5, 0.0))  # A study's: the A/A at one p.
  with pytest.raises(InputError, match="at alpha gap 0 "):
    checks.check(config)
  config.estimator.p_extrapolation.form = "cubic"
  with pytest.raises(InputError, match="estimator.p_extrapolation.form"):
    checks.check(config)


def test_a_run_scores_it_at_every_point_from_its_own_arm_means(tiny_root, tmp_path):
  config = small_sim_config(tiny_root, mode="pooling", **{"sweep.p_treatment": (0.3, 0.5, 0.7),
                                                          "sweep.alpha_gap": (0.0, 1.0)})
  config.estimator.names = ("p_extrapolation",)
  simulate.run(config, tmp_path)
  result = json.loads((tmp_path / "result.json").read_text())
  for gap in (0.0, 1.0):
    pts = [q for q in result["points"] if q["alpha_gap"] == gap]
    assert [q["p_treatment"] for q in pts] == [0.3, 0.5, 0.7]
    c_t = extrapolation_weights((0.3, 0.5, 0.7), 1.0, 1)
    c_c = extrapolation_weights((0.3, 0.5, 0.7), 0.0, 1)
    for label in config.labels:
      m_t = np.array([q["arms"]["T"][label]["per_rep"] for q in pts])
      m_c = np.array([q["arms"]["C"][label]["per_rep"] for q in pts])
      expected = c_t @ m_t - c_c @ m_c
      for q in pts:
        got = q["estimators"]["p_extrapolation"][label]
        np.testing.assert_allclose(got["per_rep"], expected, rtol=1e-9)
        assert set(got["se_per_rep"]) == {"welch", "batch"}
        assert all(s > 0 for s in got["se_per_rep"]["batch"])
