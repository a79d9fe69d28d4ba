"""The difference in means: each arm's mean outcome per recommendation, treated minus control
(SPEC §5), with every method of stats/variance.METHODS (welch, user, batch, unit)."""

import dataclasses
from typing import ClassVar

from gtesim.stats import estimator as ab
from gtesim.stats.estimators.base import Estimator, RunData
from gtesim.stats.variance import METHODS


@dataclasses.dataclass(frozen=True)
class DifferenceInMeans(Estimator):
  name: ClassVar[str] = "difference_in_means"
  needs: ClassVar[tuple] = ("step_sums",)  # And the user and unit variances where the
  # design keeps them (NaN methods where it does not).
  methods: ClassVar[tuple] = tuple(METHODS)

  def estimate(self, data: RunData, n_blocks: int, level: float) -> dict:
    evals = data.history.evals
    user_var = evals["user_var"][data.e][:, data.point] if "user_var" in evals else None
    total, sq, n = data.step_sums()
    unit_var, unit_df = data.design.unit.variance(total, n, evals, data.e, data.point)
    return ab.ab_estimate(total, sq, n, user_var, n_blocks, level, unit_var, unit_df)
