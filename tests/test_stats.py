"""Statistics: the estimator's standard errors against hand computations and known
calibration; the paired statistics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from gtesim.designs import switchback
from gtesim.stats import estimator as estimators
from gtesim.stats import paired
from gtesim.stats import variance
from gtesim.stats.variance import METHODS


@pytest.fixture
def gen():
  return np.random.default_rng(0)


def _experiment(gen, n_users=200, recs=10, user_sd=0.0, effect=0.0, p=0.5, t=20):
  """Per-step arm sums of an experiment: user i (arm Z_i) gets `recs` recommendations spread
  over t steps, outcome = effect * Z_i + u_i + noise; returns sums and raw per-user data."""
  z = gen.random(n_users) < p
  u = gen.normal(0, user_sd, n_users)
  user = np.repeat(np.arange(n_users), recs)
  when = gen.integers(0, t, len(user))
  y = effect * z[user] + u[user] + gen.normal(0, 1, len(user))
  arm = np.where(z[user], 0, 1)
  sums = np.zeros((t, 1, 2, 1))
  sq = np.zeros((t, 1, 2, 1))
  n = np.zeros((t, 1, 2))
  np.add.at(sums, (when, 0, arm, 0), y)
  np.add.at(sq, (when, 0, arm, 0), y * y)
  np.add.at(n, (when, 0, arm), 1)
  user_sum = np.zeros((n_users, 2, 1))
  user_n = np.zeros((n_users, 2))
  np.add.at(user_sum, (user, arm, 0), y)
  np.add.at(user_n, (user, arm), 1)
  return sums, sq, n, user_sum, user_n, y, arm, user


def _user_var(user_sum, user_n):
  """The device computation (float32, jax.numpy) of the user-clustered variance."""
  return np.asarray(variance.clustered_variance(jnp.asarray(user_sum, jnp.float32),
                                                jnp.asarray(user_n, jnp.float32), xp=jnp),
                    np.float64)


def test_welch_and_user_clustered_variance_match_hand_computation(gen):
  sums, sq, n, user_sum, user_n, y, arm, user = _experiment(gen, user_sd=0.5)
  var = _user_var(user_sum, user_n)
  e = estimators.ab_estimate(sums, sq, n, var[None], n_blocks=4, level=0.95)
  yt, yc = y[arm == 0], y[arm == 1]
  assert e["estimate"][0, 0] == pytest.approx(yt.mean() - yc.mean())
  welch = np.sqrt(yt.var(ddof=1) / len(yt) + yc.var(ddof=1) / len(yc))
  assert e["se"]["welch"][0, 0] == pytest.approx(welch)
  psi = np.zeros(user.max() + 1)  # CR1 by hand: per-user influence of the difference.
  for i in range(len(psi)):
    mine = user == i
    a = arm[mine][0]
    resid = (y[mine] - (yt.mean() if a == 0 else yc.mean())).sum() / (mine & (arm == a)).sum()
    psi[i] = resid * (mine & (arm == a)).sum() / (arm == a).sum() * (1 if a == 0 else -1)
  g = len(psi)
  assert var[0] == pytest.approx(g / (g - 1) * np.sum(psi ** 2), rel=1e-4)
  blocks = [b for b in np.array_split(np.arange(20), 4)]
  block_est = [sums[b, 0, 0, 0].sum() / n[b, 0, 0].sum() - sums[b, 0, 1, 0].sum() /
               n[b, 0, 1].sum() for b in blocks]
  assert e["se"]["batch"][0, 0] == pytest.approx(np.std(block_est, ddof=1) / 2)


def test_coverage_is_calibrated_where_each_method_assumes(gen):
  """iid outcomes: Welch, user and batch means cover 95%. A per-user random effect with
  users recurring: Welch under-covers, the user-clustered SE stays calibrated."""
  def coverage(user_sd, reps=600):
    hits = {m: 0 for m in METHODS}
    for _ in range(reps):
      sums, sq, n, user_sum, user_n, *_ = _experiment(gen, user_sd=user_sd, effect=0.3)
      e = estimators.ab_estimate(sums, sq, n, _user_var(user_sum, user_n)[None], 10, 0.95)
      for m in METHODS:
        lo, hi = e["ci"][m][0, 0]
        hits[m] += lo <= 0.3 <= hi
    return {m: h / reps for m, h in hits.items()}
  tol = 3 * np.sqrt(0.05 * 0.95 / 600)
  iid = coverage(0.0)
  for m in ("welch", "user", "batch"):
    assert abs(iid[m] - 0.95) < tol + 0.01, iid
  assert iid["unit"] == 0  # No unit variance given: undefined (NaN) intervals cover nothing.
  clustered = coverage(1.0)
  assert clustered["welch"] < 0.80, clustered  # SE too small by ~sqrt(1 + 9 * 0.5).
  assert abs(clustered["user"] - 0.95) < tol + 0.01, clustered


def test_paired_statistics_against_each_repetitions_own_truth():
  est = np.array([1.5, 0.5, 2.0, 1.0])
  truth = np.array([1.0, 0.0, 1.2, 1.6])  # Each repetition its own truth.
  se = {m: np.full(4, 0.25) for m in METHODS}
  ci = {m: np.stack([est - 0.5, est + 0.5], 1) for m in METHODS}
  s = paired.paired(est, truth, se, ci)
  d = est - truth
  assert s["bias"] == pytest.approx(d.mean())
  assert s["bias_se"] == pytest.approx(d.std(ddof=1) / 2)
  assert s["rmse"] == pytest.approx(np.sqrt(np.mean(d ** 2)))
  # 2.0 ± 0.5 misses 1.2; 1.0 ± 0.5 misses 1.6.
  assert s["coverage"]["welch"] == pytest.approx(0.5)
  assert s["vif"]["user"] == pytest.approx(d.std(ddof=1) / 0.25)
  assert s["sd_truth"] == pytest.approx(truth.std(ddof=1))


def test_cluster_variance_is_calibrated_when_whole_clusters_share_an_effect(gen):
  """40 clusters of 10 users, Z per cluster, a cluster random effect (sd 1): the
  user-clustered SE under-covers, the cluster-level (`unit`) SE with its Satterthwaite t
  quantile covers."""
  n_clusters, size, recs, effect = 40, 10, 5, 0.3
  hits = {"user": 0, "unit": 0}
  reps = 500
  for _ in range(reps):
    cz = gen.random(n_clusters) < 0.5
    cluster = np.repeat(np.arange(n_clusters), size)
    user = np.repeat(np.arange(n_clusters * size), recs)
    z = cz[cluster][user]
    y = effect * z + gen.normal(0, 1, n_clusters)[cluster][user] + gen.normal(0, 1, len(user))
    arm = np.where(z, 0, 1)
    sums = np.zeros((1, 1, 2, 1))
    sq = np.zeros((1, 1, 2, 1))
    n = np.zeros((1, 1, 2))
    np.add.at(sums, (0, 0, arm, 0), y)
    np.add.at(sq, (0, 0, arm, 0), y * y)
    np.add.at(n, (0, 0, arm), 1)
    user_sum = np.zeros((n_clusters * size, 2, 1))
    user_n = np.zeros((n_clusters * size, 2))
    np.add.at(user_sum, (user, arm, 0), y)
    np.add.at(user_n, (user, arm), 1)
    unit_sum = jax.ops.segment_sum(jnp.asarray(user_sum, jnp.float32), jnp.asarray(cluster),
                                   num_segments=n_clusters)
    unit_n = jax.ops.segment_sum(jnp.asarray(user_n, jnp.float32), jnp.asarray(cluster),
                                 num_segments=n_clusters)
    unit_var, df = map(np.asarray, variance.arm_clustered_variance(unit_sum, unit_n, xp=jnp))
    e = estimators.ab_estimate(sums, sq, n, _user_var(user_sum, user_n)[None], 1, 0.95,
                               unit_var[None], df[None])
    for m in hits:
      lo, hi = e["ci"][m][0, 0]
      hits[m] += lo <= effect <= hi
  tol = 3 * np.sqrt(0.05 * 0.95 / reps)
  assert hits["user"] / reps < 0.7
  assert abs(hits["unit"] / reps - 0.95) < tol + 0.01, hits


def test_period_variance_is_the_two_sample_formula_over_periods():
  gen = np.random.default_rng(0)
  t, period = 40, 5
  n = np.zeros((t, 1, 2))
  sums = np.zeros((t, 1, 2, 1))
  for p in range(t // period):
    arm = p % 2
    n[p * period:(p + 1) * period, 0, arm] = gen.integers(5, 10, period)
    sums[p * period:(p + 1) * period, 0, arm, 0] = gen.normal(3 + arm, 1, period) * 7
  var, df, g = switchback.period_variance(sums, n, period)
  assert g == 8 and np.all((3 <= df) & (df <= 6))  # 4 periods per arm.
  unit_sum = sums.reshape(8, period, 2, 1).sum(1)
  unit_n = n.reshape(8, period, 2).sum(1)
  big_n = unit_n.sum(0)
  mean = unit_sum.sum(0) / big_n[:, None]
  resid_t = (unit_sum[:, 0] - unit_n[:, 0:1] * mean[0]) / big_n[0]
  resid_c = (unit_sum[:, 1] - unit_n[:, 1:2] * mean[1]) / big_n[1]
  # 4 periods per arm: each arm's part with its own 4 / 3.
  np.testing.assert_allclose(var[0], ((resid_t ** 2).sum(0) + (resid_c ** 2).sum(0)) * 4 / 3,
                             rtol=1e-12)


def test_unit_variance_is_welch_on_units_and_few_treated_clusters_still_cover(gen):
  """The unit SE follows the units in each arm: its degrees of freedom are G_T + G_C - 2 with
  equal parts on equal arms, about G_a - 1 when arm a's part dominates, undefined with one
  unit in an arm. With 3 treated clusters of 20 (p = 0.15) it nearly covers; CR1 on all 20
  clusters with t on G - 1 = 19 df does not (0.84)."""
  unit_n = np.zeros((8, 2))
  unit_n[:4, 0] = unit_n[4:, 1] = 10
  unit_sum = np.zeros((8, 2, 1))
  unit_sum[:4, 0, 0] = [1, 3, 1, 3]
  unit_sum[4:, 1, 0] = [1, 3, 1, 3]
  var, df = variance.arm_clustered_variance(unit_sum, unit_n)
  cluster_means = np.array([0.1, 0.3, 0.1, 0.3])  # Equal sizes: Welch on the cluster means.
  assert var[0] == pytest.approx(2 * cluster_means.var(ddof=1) / 4)
  assert df[0] == pytest.approx(6.0)
  unit_sum[4:, 1, 0] = [2, 2.001, 2, 2.001]  # The control part is ~0: df -> G_T - 1.
  assert variance.arm_clustered_variance(unit_sum, unit_n)[1][0] == pytest.approx(3, abs=1e-3)
  unit_n[1:4, 0] = 0
  assert np.isnan(variance.arm_clustered_variance(unit_sum, unit_n)).all()

  n_clusters, size, reps = 20, 30, 4000
  hits = {"welch on units": 0, "CR1, G-1": 0}
  for _ in range(reps):
    treated = np.zeros(n_clusters, bool)
    treated[gen.choice(n_clusters, 3, replace=False)] = True
    y = gen.normal(0, 1, n_clusters)[:, None] + gen.normal(0, 1, (n_clusters, size))
    unit_n = np.zeros((n_clusters, 2))
    unit_sum = np.zeros((n_clusters, 2, 1))
    arm = np.where(treated, 0, 1)
    unit_n[np.arange(n_clusters), arm] = size
    unit_sum[np.arange(n_clusters), arm, 0] = y.sum(1)
    est = y[treated].mean() - y[~treated].mean()
    var, df = variance.arm_clustered_variance(unit_sum, unit_n)
    hits["welch on units"] += abs(est) <= stats.t.ppf(0.975, df[0]) * np.sqrt(var[0])
    cr1 = variance.clustered_variance(unit_sum, unit_n)[0]
    hits["CR1, G-1"] += abs(est) <= stats.t.ppf(0.975, n_clusters - 1) * np.sqrt(cr1)
  cover = {k: v / reps for k, v in hits.items()}
  assert cover["CR1, G-1"] < 0.88, cover  # 3 treated clusters: far too narrow.
  # Welch with 3 units in an arm is itself a little liberal (0.928 here, MC se 0.004).
  assert 0.92 < cover["welch on units"] < 0.965, cover
