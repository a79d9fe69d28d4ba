"""Differences-in-Q (Farias, Li, Peng & Zheng, "Markovian Interference in Experiments", 2022;
the Douyin case study, Farias et al. 2023) with Q estimated by k-step returns.

Under request-level randomisation (`experiment.assignment = "step"`: every user's arm is drawn
anew every step) a recommendation's arm moves the system's state (the models it trains) and
through it the outcomes of the steps that follow. DQ credits each recommendation with its
outcome plus the centred outcomes of the k steps after its own:

    Q_i = r_i + F_t,   F_t = sum_{j=1..k} (S_{t+j} - lambda N_{t+j}),

S_s and N_s the outcome sum and recommendations of step s over both arms, lambda the run's
mean outcome per recommendation (the average-reward baseline; steps past the horizon count
nothing, so the last k steps' F is truncated), and estimates the GTE by the difference of the
arms' mean Q: sum_t (S_Tt + n_Tt F_t) / n_T - sum_t (S_Ct + n_Ct F_t) / n_C. The same step's
other recommendations are left out of F (a step's models are fixed while it is served). At
k = 0 it is the difference in means exactly.

Its assumption is the paper's: the state's response to the arm mix is smooth enough that the
first-order (derivative) correction is what the bias is, and its effect has faded within k
steps. What it gains comes from the step-to-step variation of the treated share (binomial with
a step's users), so its variance grows with k and with the users per step: F_t sums k steps of
every user's outcomes. The horizon is `estimator.dq.horizons`: every k listed is scored from
the same run, as `dq-k=<k>`.

Standard errors:
- `batch`: the estimate on each of K blocks of consecutive steps (F from the whole run), SE =
  sd of the K block estimates / sqrt(K), Student t with K - 1 degrees of freedom;
- `hac`: Newey-West (Bartlett weights, lag k) over the steps' contributions to the estimate's
  linearisation psi_t = (a_Tt - n_Tt Qbar_T) / n_T - (a_Ct - n_Ct Qbar_C) / n_C, with
  a_at = S_at + n_at F_t (the F of neighbouring steps overlap by up to k steps), normal
  quantile.
"""

import dataclasses
from typing import ClassVar

import numpy as np
from scipy import stats

from gtesim.errors import require
from gtesim.stats.estimators.base import Estimator, RunData
from gtesim.stats.variance import _mean


def future_sums(step_total, step_n, k: int):
  """F [t, B, L]: each step's centred outcome sum over the k steps after it (truncated at the
  run's end), from the steps' outcome sums [t, B, L] and recommendations [t, B] over both
  arms; the centring is the run's mean outcome per recommendation."""
  lam = _mean(step_total.sum(0), step_n.sum(0)[:, None])  # [B, L]
  dev = step_total - step_n[..., None] * np.nan_to_num(lam)[None]
  cum = np.concatenate([np.zeros_like(dev[:1]), np.cumsum(dev, axis=0)])  # cum[s] = sum_{<s}.
  steps = dev.shape[0]
  end = np.minimum(np.arange(steps) + k + 1, steps)
  return cum[end] - cum[np.arange(steps) + 1]


def newey_west(psi, lag: int):
  """Newey-West variance of sum_t psi_t ([t, ...] over steps), Bartlett weights to `lag`."""
  var = np.sum(psi * psi, axis=0)
  for h in range(1, min(lag, psi.shape[0] - 1) + 1):
    var = var + 2 * (1 - h / (lag + 1)) * np.sum(psi[h:] * psi[:-h], axis=0)
  return np.maximum(var, 0.0)


@dataclasses.dataclass(frozen=True)
class DifferencesInQ(Estimator):
  """See the module docstring."""
  horizon: int = 0
  name: ClassVar[str] = "dq"
  needs: ClassVar[tuple] = ("step_sums",)
  methods: ClassVar[tuple] = ("batch", "hac")

  @classmethod
  def instances(cls, config, name):
    return {f"{name}-k={int(k)}": cls(int(k)) for k in config.estimator.dq.horizons}

  @classmethod
  def check_config(cls, config, design, points):
    del points
    require(getattr(design.assignment, "kind", None) == "step", "estimator.names",
            "dq estimates under request-level randomisation: every user's arm drawn anew "
            "every step. Set experiment.assignment = 'step' (a design with its own assignment, "
            f"as {config.mode}'s {type(design.assignment).__name__}, cannot run it).")
    ks = tuple(config.estimator.dq.horizons)
    require(len(ks) >= 1 and all(isinstance(k, int) and k >= 0 for k in ks),
            "estimator.dq.horizons", f"{ks!r}: give one or more steps k >= 0 (integers).")
    require(len(set(ks)) == len(ks), "estimator.dq.horizons", f"{ks!r} holds a k twice.")
    require(max(ks) < config.sim.n_steps, "estimator.dq.horizons",
            f"{max(ks)} is not below the run's sim.n_steps = {config.sim.n_steps}.")

  def estimate(self, data: RunData, n_blocks: int, level: float) -> dict:
    total, _, n = (np.asarray(a, np.float64) for a in data.step_sums())  # [t, B, 2(, L)]
    f = future_sums(total.sum(2), n.sum(2), self.horizon)  # [t, B, L]
    a = total + n[..., None] * f[:, :, None]  # [t, B, 2, L]: each step's summed Q per arm.
    n_arm = n.sum(0)[..., None]  # [B, 2, 1]
    q = _mean(a.sum(0), n_arm)  # [B, 2, L]
    est = q[:, 0] - q[:, 1]
    with np.errstate(invalid="ignore", divide="ignore"):
      resid = (a - n[..., None] * q[None]) / n_arm[None]  # [t, B, 2, L]
    psi = resid[:, :, 0] - resid[:, :, 1]
    hac = np.sqrt(newey_west(psi, self.horizon))
    steps = total.shape[0]
    k = min(n_blocks, steps)
    block_est = []
    for block in np.array_split(np.arange(steps), k):
      qb = _mean(a[block].sum(0), n[block].sum(0)[..., None])
      block_est.append(qb[:, 0] - qb[:, 1])
    batch = (np.stack(block_est).std(axis=0, ddof=1) / np.sqrt(k) if k > 1
             else np.full_like(est, np.nan))
    quantile = {"batch": stats.t.ppf(0.5 + level / 2, max(k - 1, 1)),
                "hac": stats.norm.ppf(0.5 + level / 2)}
    se = {"batch": batch, "hac": hac}
    ci = {m: np.stack([est - quantile[m] * se[m], est + quantile[m] * se[m]], -1)
          for m in self.methods}
    return {"estimate": est, "se": se, "ci": ci}
