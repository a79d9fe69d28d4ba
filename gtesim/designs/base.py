"""The design interface (SPEC §5) and the two kinds every design is one of.

A design is static (it shapes the compiled step; its hooks are hashable and resolved once by
the registry in designs/__init__.py); the treatment probability p and the arms' ranking
weights are traced inputs (`core.state.Point`), so a sweep over them is a map/vmap axis of
one compiled call.

`GlobalMode` runs worlds of one arm each (GT ranks with alpha_T, GC with alpha_C) for the
true GTE. `ABDesign` runs one world per sweep point with two arms, 0 = treatment and
1 = control, and estimates the GTE by the difference of the arms' means; its defaults are
user assignment and pooled, unweighted training (the pooling design), and every other design
overrides the hooks where it differs: who is treated (`assign`), what a user may be shown
(`candidate_filter`, `user_class`, `video_classes`), which steps enter the estimate
(`counted`), what each arm's models learn from (`train_weights`), its own state and
per-repetition set-up, and its own evaluation and unit-level variance.
"""

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import struct

from gtesim import prng
from gtesim.core.scoring import CONTROL, TREATMENT
from gtesim.designs import layouts
from gtesim.designs.reporting import Reporting
from gtesim.errors import require
from gtesim.stats import variance


def unit_uniform(rep_key, unit):
  """U[0, 1) of a randomisation unit (a cluster or a switchback period) of a repetition."""
  return jax.random.uniform(jax.random.fold_in(prng.stream(rep_key, "assign_unit"), unit))


@dataclasses.dataclass(frozen=True)
class Design:
  """What every design provides (see the module docstring and docs/extending.md)."""
  name: str  # The registry name (config key `mode`).
  train_models: bool = True  # False: the label models stay at the production state.

  arms: ClassVar[int] = 2
  needs_rep_data: ClassVar[bool] = False  # `rep_data` builds a per-repetition set-up.
  layout: ClassVar = layouts.ABLayout()  # Its worlds on the host (designs/layouts.py).
  reporting: ClassVar[Reporting] = Reporting()  # What it declares for the outputs.

  @classmethod
  def from_config(cls, config, ds=None) -> "Design":
    """The design of a config (`ds`: the dataset, where a static size depends on it)."""
    del ds
    return cls(config.mode, train_models=config.sim.train_models)

  @classmethod
  def check_config(cls, config, active: bool) -> None:
    """Refuses bad values of the design's own config keys (`active`: it is the run's mode)."""

  @staticmethod
  def rep_data(config, ds, train_user, user_enc, key):
    """The design's per-repetition set-up on the host (RepData.designs[name])."""
    raise NotImplementedError

  @classmethod
  def study_extra_jobs(cls, config) -> list:
    """[(job name, {config key: value}[, "main"])] a study runs beside the design itself: at
    every point of the design, or with "main" at the main point and the A/A only."""
    return []

  # --- the compiled step -----------------------------------------------------------------

  def init_state(self, spec, rep, point):
    """The design's own state in a fresh world (a pytree; () when it has none)."""
    return ()

  def assign(self, rep, users, step_key, p, t):
    """Z [b] bool: which of the step's users are treated."""
    raise NotImplementedError

  def arm_of(self, z):
    """Arm index [b] int32 of each user."""
    raise NotImplementedError

  def candidate_filter(self, rep, point, z):
    """videos [b, ...] -> bool [b, ...]: the videos each user may be shown; None: all."""
    return None

  def user_class(self, arm):
    """[b] int32: the video class (Fenwick tree) each user draws its candidates from."""
    return jnp.zeros_like(arm)

  def video_classes(self, rep, point, videos):
    """[bool masks of the videos of each class], or None with one class."""
    return None

  def counted(self, t):
    """Whether step t's outcomes enter the estimate."""
    return jnp.bool_(True)

  def train_weights(self, spec, state, rep, point, pairs, z, rec_ok, key):
    """(state, mask [A, b], weight [A, b], {step metric: value}): arm a's loss is
    sum(mask * weight * loss) / sum(mask) over the step's recommended items."""
    ok = rec_ok.astype(jnp.float32)
    mask = jnp.broadcast_to(ok, (self.arms,) + ok.shape)
    return state, mask, jnp.ones_like(mask), {}

  def tally(self, state, position, in_arm, y_arm):
    """The state after the step's counted outcomes (in_arm [A, b], y_arm [A, b, L])."""
    return state

  def evaluate(self, spec, state, rep) -> dict:
    """The design's extra evaluation of a world (e.g. the estimate's variance so far)."""
    return {}

  # --- statistics (host) -----------------------------------------------------------------

  def unit_variance(self, steps_sum, steps_n, evals: dict, e: int, point: int):
    """(variance [B, L] with the design's randomisation units, its degrees of freedom [B, L]
    (variance.arm_clustered_variance)), or (None, None)."""
    return None, None

  def extra_flops(self, spec) -> float:
    """Model FLOPs of one step beyond the label models' (bench.py)."""
    return 0.0


@dataclasses.dataclass(frozen=True)
class GlobalMode(Design):
  """Global mode: a GT world at every sweep point (treatment alphas at that alpha gap) and
  one GC world shared by every point (alpha_C does not depend on the gap)."""
  arms: ClassVar[int] = 1
  layout: ClassVar = layouts.GlobalLayout()

  @classmethod
  def check_config(cls, config, active):
    if active:
      require(not config.sweep.p_treatment, "sweep.p_treatment",
              "global mode has no treatment probability (every user of a world gets the same "
              "policy); sweep alpha_gap, or run an A/B design.")
      for field in ("epsilon", "temperature"):
        require(len(config.sweep[field]) <= 1, f"sweep.{field}",
                "global mode's GC world is shared by every point, so it cannot sweep "
                f"exploration: run one global job per value of sim.{field}.")

  def assign(self, rep, users, step_key, p, t):
    return jnp.ones(users.shape, bool)

  def arm_of(self, z):
    return jnp.zeros(z.shape, jnp.int32)


@struct.dataclass
class UserSums:
  """A/B designs: each train user's summed counted outcomes and recommendations per arm
  (for the user-clustered standard error)."""
  user_sum: jax.Array  # [n_train, A, L] float32.
  user_n: jax.Array  # [n_train, A] float32.


@dataclasses.dataclass(frozen=True)
class ABDesign(Design):
  """A two-arm experiment; the defaults are the pooling design (see the module docstring)."""
  assignment: str = "user"  # "user": Z drawn once per user; "step": redrawn every step.
  reporting: ClassVar[Reporting] = Reporting(evaluation_fields=("user_var",))  # The
  # user-clustered variance so far.

  @classmethod
  def from_config(cls, config, ds=None):
    del ds
    return cls(config.mode, train_models=config.sim.train_models,
               assignment=config.experiment.assignment)

  def init_state(self, spec, rep, point):
    return UserSums(jnp.zeros((spec.n_train, self.arms, len(spec.models)), jnp.float32),
                    jnp.zeros((spec.n_train, self.arms), jnp.float32))

  def assign(self, rep, users, step_key, p, t):
    """"user": one uniform per (repetition, user), compared with p, so every p of a sweep
    uses the same uniforms; "step": a new uniform every step."""
    if self.assignment == "user":
      key = prng.stream(rep.key, "assign")
      u = jax.vmap(lambda i: jax.random.uniform(jax.random.fold_in(key, i)))(users)
    else:
      u = jax.random.uniform(step_key, users.shape)
    return u < p

  def arm_of(self, z):
    return jnp.where(z, TREATMENT, CONTROL).astype(jnp.int32)

  def tally(self, state, position, in_arm, y_arm):
    return state.replace(user_sum=state.user_sum.at[position].add(jnp.moveaxis(y_arm, 1, 0)),
                         user_n=state.user_n.at[position].add(in_arm.T.astype(jnp.float32)))

  def evaluate(self, spec, state, rep):
    return {"user_var": variance.clustered_variance(state.user_sum, state.user_n, xp=jnp)}
