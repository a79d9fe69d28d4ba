"""Switchback: the whole population switches arm every `experiment.switchback.every` steps.

`switch_order = "balanced"` (default) treats exactly round(p x G) of the G periods, in random
order, so both arms occur in every repetition; `"random"` treats each period with
probability p (i.i.d.: some repetitions may lack an arm); `"alternating"` goes T, C, T, ...
from a random first arm (p = 0.5 only). Both arms' models train on all data; the first
`experiment.switchback.burn_in` steps of each period are left out of the estimate (they still
train the models). The `unit` standard error treats the periods as the units. Its pieces:
`Periods` (who is treated), `BurnIn` (which steps count), `PeriodUnit` (the variance's unit).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from gtesim import prng
from gtesim.designs import pieces
from gtesim.designs.base import ABDesign, ab_pieces
from gtesim.errors import InputError
from gtesim.errors import require
from gtesim.stats import estimators
from gtesim.stats import variance


def period_variance(outcome_sum, n_recs, period: int):
  """([B, L] variance with periods of `period` steps as the units (CR1), [B, L] its degrees of
  freedom (variance.arm_clustered_variance), the number of periods).

  Args:
    outcome_sum: [T, B, 2, L] per-step sums (steps left out of the estimate: zero counts).
    n_recs: [T, B, 2].
  """
  t = outcome_sum.shape[0]
  index = np.arange(t) // period
  g = int(index[-1]) + 1 if t else 0
  sums = np.zeros((g,) + outcome_sum.shape[1:])
  counts = np.zeros((g,) + n_recs.shape[1:])
  np.add.at(sums, index, outcome_sum.astype(np.float64))
  np.add.at(counts, index, n_recs.astype(np.float64))
  var, df = zip(*(variance.arm_clustered_variance(sums[:, i], counts[:, i])
                  for i in range(outcome_sum.shape[1])))
  return np.stack(var), np.stack(df), g


@dataclasses.dataclass(frozen=True)
class Periods(pieces.Assignment):
  """The whole population is in one arm during each period of `every` steps."""
  every: int = 1  # Steps per period.
  order: str = "balanced"  # "balanced", "random" or "alternating".
  n_periods: int = 1  # Periods in the run, ceil(n_steps / every).

  def assign(self, rep, users, step_key, p, t):
    """Period t // every is treated: "balanced", when its rank in a random permutation of the
    G periods is below round(p G) (exactly that many treated periods, so both arms occur
    whenever 1 <= round(p G) < G); "random", when its own uniform is below p; or alternately
    T, C, T, ... from a random first arm."""
    period = t // self.every
    if self.order == "alternating":
      first = pieces.unit_uniform(rep.key, jnp.uint32(0xFFFFFFFF)) < 0.5  # Reserved unit.
      z = (period % 2 == 0) == first
    elif self.order == "balanced":
      key = jax.random.fold_in(prng.stream(rep.key, "assign_unit"), jnp.uint32(0xFFFFFFFE))
      rank = prng.permute(jnp.asarray(period)[None], self.n_periods, key)[0]
      z = rank < jnp.round(p * self.n_periods)
    else:
      z = pieces.unit_uniform(rep.key, period) < p
    return jnp.broadcast_to(z, users.shape)


@dataclasses.dataclass(frozen=True)
class BurnIn(pieces.Counting):
  """Each period's first `burn_in` steps are left out, while the models adapt (they still
  train the models)."""
  every: int = 1
  burn_in: int = 0

  def counted(self, t):
    return t % self.every >= self.burn_in


@dataclasses.dataclass(frozen=True)
class PeriodUnit(pieces.UserUnit):
  """Periods of `every` steps are the units of the `unit` standard error (from the per-step
  sums on the host)."""
  every: int = 1

  def variance(self, steps_sum, steps_n, evals, e, point):
    return period_variance(steps_sum, steps_n, self.every)[:2]


@dataclasses.dataclass(frozen=True)
class Switchback(ABDesign):
  """See the module docstring."""

  @classmethod
  def from_config(cls, name, config, ds=None):
    del ds
    sb = config.experiment.switchback
    return cls(name, **{**ab_pieces(config),
                        "assignment": Periods(sb.every, sb.order,
                                              -(-config.sim.n_steps // sb.every)),
                        "counting": BurnIn(sb.every, sb.burn_in),
                        "unit": PeriodUnit(covariate=estimators.needed(config, "covariate"),
                                           every=sb.every)})

  @classmethod
  def study_extra_jobs(cls, config):
    """study.switchback_variants: (steps per period, burn-in steps) each, a job at the main
    point and the A/A ("switchback-every=<n>,burn_in=<b>")."""
    out = []
    for variant in config.study.switchback_variants:
      if len(variant) != 2:
        raise InputError(f"config key study.switchback_variants holds {variant!r}: use "
                         "(steps per period, burn-in steps) pairs.")
      every, burn_in = map(int, variant)
      out.append((f"switchback-every={every},burn_in={burn_in}",
                  {"experiment.switchback.every": every, "experiment.switchback.burn_in": burn_in},
                  "main"))
    return out

  @classmethod
  def check_config(cls, config, active):
    exp = config.experiment
    require(exp.switchback.every >= 1, "experiment.switchback.every", "must be at least 1.")
    require(0 <= exp.switchback.burn_in < exp.switchback.every, "experiment.switchback.burn_in",
            f"must be in [0, experiment.switchback.every = {exp.switchback.every}).")
    require(exp.switchback.order in ("balanced", "random", "alternating"),
            "experiment.switchback.order",
            f"'{exp.switchback.order}': use 'balanced', 'random' or 'alternating'.")
    if active and exp.switchback.order == "alternating":
      ps = {exp.p_treatment, *config.sweep.p_treatment, *(q for q, _ in config.sweep.points)}
      require(ps == {0.5}, "experiment.switchback.order",
              "'alternating' treats every other period, i.e. p = 0.5; set p_treatment (and any "
              "swept p) to 0.5 or use 'random'.")
