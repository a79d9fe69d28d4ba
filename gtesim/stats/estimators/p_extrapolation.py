"""Traffic-share extrapolation: each arm's mean as a function of its traffic share p, fitted over
a run's sweep points and extrapolated to the worlds the GTE compares.

An experiment run at several traffic splits (a ramp-up; here `sweep.p_treatment` with two or
more values, every point at the same alpha gap and exploration) gives at each p_q the treated
arm's mean m_T(p_q) and the control arm's m_C(p_q) (outcome per recommendation over the
counted steps). When the training-loop bias comes from the share of the data each arm's
models see, the all-treated world is the treated arm at p = 1 and the all-control world the
control arm at p = 0: the estimate is f_T(1) - f_C(0), each f the least-squares polynomial in p
(`estimator.p_extrapolation.form`: "linear", degree 1, or "quadratic", degree 2, with at least
3 distinct p), every point weighted equally. It is exact when the arm means are polynomials of
that degree in p; its assumption is that they are, between the swept p's and the ends.

Every point of the sweep gets the same estimate (the run's). Standard errors (the estimate is
a fixed linear combination sum_q c_q m(p_q) of the points' arm means):
- `welch`: the delta method with every recommendation an independent draw and the points
  independent: sum_q c_Tq^2 s_Tq^2 / n_Tq + sum_q c_Cq^2 s_Cq^2 / n_Cq, normal quantile. The
  points of one repetition share its users, their assignment uniforms and the simulation's
  random draws, so this independence is an assumption the studies' coverage tests;
- `batch`: the estimate of each of K blocks of consecutive steps (every point's block means),
  SE = sd of the K block estimates / sqrt(K), Student t with K - 1 degrees of freedom: it sees
  the points' correlation and the training loop's drift, as the difference in means' `batch`.
"""

import dataclasses
from typing import ClassVar

import numpy as np
from scipy import stats

from gtesim.errors import require
from gtesim.stats.estimators.base import Estimator, RunData
from gtesim.stats.variance import _mean

FORMS = {"linear": 1, "quadratic": 2}  # Polynomial degree of each form.


def extrapolation_weights(ps, target: float, degree: int) -> np.ndarray:
  """c [m]: the least-squares polynomial of `degree` through (ps, y) evaluated at `target` is
  c @ y."""
  ps = np.asarray(ps, np.float64)
  design = np.vander(ps, degree + 1, increasing=True)  # [m, d]: 1, p, p^2.
  at = np.vander(np.asarray([target], np.float64), degree + 1, increasing=True)[0]
  return at @ np.linalg.pinv(design)


def groups(points) -> dict:
  """{(alpha gap, epsilon, temperature): [point index, ...]}: the points fitted together."""
  out = {}
  for q, s in enumerate(points):
    out.setdefault((s.alpha_gap, s.epsilon, s.temperature), []).append(q)
  return out


@dataclasses.dataclass(frozen=True)
class PExtrapolation(Estimator):
  """See the module docstring."""
  form: str = "linear"
  name: ClassVar[str] = "p_extrapolation"
  needs: ClassVar[tuple] = ("step_sums", "points")
  methods: ClassVar[tuple] = ("welch", "batch")

  @classmethod
  def from_config(cls, config):
    return cls(config.estimator.p_extrapolation.form)

  @classmethod
  def check_config(cls, config, design, points):
    del design
    form = config.estimator.p_extrapolation.form
    require(form in FORMS, "estimator.p_extrapolation.form",
            f"'{form}': use {' or '.join(repr(f) for f in FORMS)}.")
    need = FORMS[form] + 1
    for (gap, eps, tau), qs in groups(points).items():
      found = sorted({points[q].p_treatment for q in qs})
      require(len(found) >= need, "estimator.names",
              f"p_extrapolation ({form}) fits each arm's mean over at least {need} distinct "
              f"traffic shares at every alpha gap and exploration of the sweep; at alpha gap "
              f"{gap:g} (epsilon {eps:g}, temperature {tau:g}) it has {found}: give "
              f"sweep.p_treatment (or sweep.points) {need} or more values there.")

  def estimate(self, data: RunData, n_blocks: int, level: float) -> dict:
    group = next(qs for qs in groups(data.points).values() if data.point in qs)
    ps = [data.points[q].p_treatment for q in group]
    degree = FORMS[self.form]
    if len(set(ps)) < degree + 1:  # A config check refuses this; a run made otherwise too.
      raise ValueError(f"p_extrapolation ({self.form}) needs {degree + 1} distinct p at the "
                       f"point's gap and exploration, got {sorted(set(ps))}.")
    c_t = extrapolation_weights(ps, 1.0, degree)
    c_c = extrapolation_weights(ps, 0.0, degree)
    sums = [data.step_sums(q) for q in group]  # Each ([t, B, 2, L], same, [t, B, 2]).
    total = np.stack([s[0].astype(np.float64).sum(0) for s in sums])  # [m, B, 2, L]
    sq = np.stack([s[1].astype(np.float64).sum(0) for s in sums])
    n = np.stack([s[2].astype(np.float64).sum(0) for s in sums])[..., None]  # [m, B, 2, 1]
    mean = _mean(total, n)
    est = (np.tensordot(c_t, mean[:, :, 0], axes=1) -
           np.tensordot(c_c, mean[:, :, 1], axes=1))  # [B, L]
    with np.errstate(invalid="ignore", divide="ignore"):
      var = np.maximum(sq - n * mean * mean, 0.0) / np.where(n > 1, n - 1, np.nan)
      per_mean = var / n  # [m, B, 2, L]: each arm mean's variance.
    welch = np.sqrt(np.tensordot(c_t ** 2, per_mean[:, :, 0], axes=1) +
                    np.tensordot(c_c ** 2, per_mean[:, :, 1], axes=1))
    steps = sums[0][0].shape[0]
    k = min(n_blocks, steps)
    block_est = []
    for block in np.array_split(np.arange(steps), k):
      m = np.stack([_mean(s[0][block].astype(np.float64).sum(0),
                          s[2][block].astype(np.float64).sum(0)[..., None]) for s in sums])
      block_est.append(np.tensordot(c_t, m[:, :, 0], axes=1) -
                       np.tensordot(c_c, m[:, :, 1], axes=1))
    batch = (np.stack(block_est).std(axis=0, ddof=1) / np.sqrt(k) if k > 1
             else np.full_like(est, np.nan))
    quantile = {"welch": stats.norm.ppf(0.5 + level / 2),
                "batch": stats.t.ppf(0.5 + level / 2, max(k - 1, 1))}
    se = {"welch": welch, "batch": batch}
    ci = {m: np.stack([est - quantile[m] * se[m], est + quantile[m] * se[m]], -1)
          for m in self.methods}
    return {"estimate": est, "se": se, "ci": ci}
