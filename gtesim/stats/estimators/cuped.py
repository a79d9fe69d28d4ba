"""CUPED: the difference in means adjusted by each user's pre-experiment outcome (Deng, Xu,
Kohavi & Walker 2013), in its linearised form for a per-recommendation mean.

The covariate x_i of user i is its mean label over the logged rows pretraining draws from
(designs/pieces.UserUnit.rep_data; fixed before the experiment assigns anyone). Each arm's
covariate mean is weighted like its outcome mean, xbar_a = sum_i n_ia x_i / N_a, and the
estimate is

    (m_T - m_C) - theta (xbar_T - xbar_C),  theta = c_xy / c_xx,

with c_xy, c_xx the user-clustered covariances of the linearisations of m_T - m_C and of
xbar_T - xbar_C (stats/variance.covariate_moments, summed on the device over the per-user sums
the designs keep). Its variance is the user-clustered variance of the adjusted
linearisation, user_var - c_xy^2 / c_xx: never above the difference in means' `user`
variance, smaller the better the covariate predicts. theta is estimated from both arms
together (O(1/n) bias).

Assumptions: users are the randomisation unit the `user` SE treats as independent (as the
difference in means' `user`), and the treatment does not change how often each user is
recommended (else xbar_T - xbar_C carries an effect of its own). It removes no training-loop
bias: its target is the difference in means' target, with less variance (the fair baseline
for power). One SE method, `user`, normal quantile.
"""

import dataclasses
from typing import ClassVar

import numpy as np
from scipy import stats

from gtesim.stats.estimators.base import COVARIATE_FIELDS, Estimator, RunData
from gtesim.stats.variance import _mean


@dataclasses.dataclass(frozen=True)
class Cuped(Estimator):
  """See the module docstring."""
  name: ClassVar[str] = "cuped"
  needs: ClassVar[tuple] = ("step_sums", "user_var", "covariate")
  methods: ClassVar[tuple] = ("user",)

  def estimate(self, data: RunData, n_blocks: int, level: float) -> dict:
    del n_blocks
    evals = data.history.evals
    dx, c_xy, c_xx = (np.asarray(evals[f][data.e][:, data.point], np.float64)
                      for f in COVARIATE_FIELDS)  # Each [B, L].
    user_var = np.asarray(evals["user_var"][data.e][:, data.point], np.float64)
    total, _, n = data.step_sums()
    mean = _mean(total.astype(np.float64).sum(0), n.astype(np.float64).sum(0)[..., None])
    with np.errstate(invalid="ignore", divide="ignore"):
      theta = np.where(c_xx > 0, c_xy / np.where(c_xx > 0, c_xx, 1), 0.0)
      est = mean[:, 0] - mean[:, 1] - theta * dx
      var = np.maximum(user_var - theta * c_xy, 0.0)
    se = np.sqrt(var)
    q = stats.norm.ppf(0.5 + level / 2)
    return {"estimate": est, "se": {"user": se},
            "ci": {"user": np.stack([est - q * se, est + q * se], -1)}}
