"""What an estimator of the GTE is: what it reads of an A/B run, and what it returns.

An estimator turns one sweep point of an A/B run (its per-step per-arm sums, and where it
declares them the design's device-side variances or the run's other sweep points) into, per
repetition and label, an estimate of the global treatment effect with standard errors and
confidence intervals by each of its own SE methods. Studies score it against the paired truth
exactly like a design: each (design, estimator) pair is one cell.
"""

import dataclasses
from typing import ClassVar

# What an estimator may read of a run (Estimator.needs), checked against the design.
NEEDS = {
    "step_sums": "per-step per-arm outcome sums, squares and recommendations of every point",
    "user_var": "the user-clustered variance the A/B designs keep on the device",
    "unit_var": "the variance with the design's randomisation units (cluster, switchback)",
    "points": "every sweep point of the run (estimators that combine points)",
    "covariate": "each user's pre-experiment outcome against the per-user sums the A/B designs "
                 "keep on the device (the covariate fields below)",
}
# The unit piece's evaluation fields with `covariate` (designs/pieces.UserUnit; variance.
# covariate_moments): the covariate means' difference and the user-clustered covariances.
COVARIATE_FIELDS = ("cov_dx", "cov_xy", "cov_xx")
COVARIATE_DATA = "pre_outcome"  # RepData.designs key: each user's pre-experiment outcome.


@dataclasses.dataclass(frozen=True)
class RunData:
  """One sweep point of an A/B run, up to step t (estimators read what they declare)."""
  history: object  # driver.history.History: steps [T, B, W, ...], evals, eval_step.
  design: object  # The run's Design (its unit piece's variance).
  points: tuple  # The run's SweepPoints (designs.worlds.SweepPoint).
  point: int  # The point (world) estimated.
  t: int  # Steps counted: the first t.
  e: int  # The validation (index into history.evals) whose device-side variances apply.

  def step_sums(self, point=None):
    """(outcome_sum, outcome_sq [t, B, 2, L], n_recs [t, B, 2]) of a point (default this)."""
    s, w = self.history.steps, self.point if point is None else point
    return (s.outcome_sum[:self.t, :, w], s.outcome_sq[:self.t, :, w],
            s.n_recs[:self.t, :, w])


@dataclasses.dataclass(frozen=True)
class Estimator:
  """The interface (docs/extending.md): `estimate` returns {"estimate": [B, L], "se":
  {method: [B, L]}, "ci": {method: [B, L, 2]}} with `methods` as the keys of se and ci."""
  name: ClassVar[str] = ""
  needs: ClassVar[tuple] = ("step_sums",)  # Keys of NEEDS.
  methods: ClassVar[tuple] = ()  # Its SE methods, in the order reports list them.

  @classmethod
  def from_config(cls, config) -> "Estimator":
    del config
    return cls()

  @classmethod
  def instances(cls, config, name: str) -> dict:
    """{result name: Estimator}: one, under its registry name, unless it scores a list of
    settings (one result name per setting)."""
    return {name: cls.from_config(config)}

  @classmethod
  def check_config(cls, config, design, points: tuple) -> None:
    """Refuses bad values of its own config keys, or a run it cannot estimate (it is among
    estimator.names; `design`: the run's Design; `points`: its SweepPoints)."""

  def estimate(self, data: RunData, n_blocks: int, level: float) -> dict:
    raise NotImplementedError
