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
import math
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from gtesim import prng
from gtesim.core.scoring import CONTROL, TREATMENT
from gtesim.core.state import Point
from gtesim.designs.worlds import exploration_inputs
from gtesim.errors import require
from gtesim.stats import descriptive
from gtesim.stats import estimators
from gtesim.stats import points as points_lib
from gtesim.stats import variance


def alpha_at_gap(alpha_t, alpha_c, gap):
  """alpha_T(lambda) = (1 - lambda) alpha_C + lambda alpha_T: lambda = 0 is the A/A."""
  return (1.0 - gap) * alpha_c + gap * alpha_t


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
  step_metrics: ClassVar[tuple] = ()  # Names of the design's own per-step metrics.
  step_metrics_world: ClassVar[str] = ""  # Their rows' `world` in metrics.parquet.
  step_metrics_label: ClassVar[str] = ""  # That world's name in figure legends.
  figure_panels: ClassVar[tuple] = ()  # (title, y label, metric keys, text when empty) of the
  # design's own panels in figure.png (every run's figure has every design's panels).
  evaluation_fields: ClassVar[tuple] = ()  # Names of `evaluate`'s outputs, [W, L] each.
  scored_against_frozen_truth: ClassVar[bool] = False  # Studies also score it against the
  # frozen-model truth (snapshot).
  report_note: ClassVar[str] = ""  # What a study report says of its estimate.

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

  # --- worlds and sweep points (host) ---------------------------------------------------

  def n_worlds(self, n_points: int) -> int:
    raise NotImplementedError

  def groups(self, points) -> list:
    """(world, arm, point, name) of every world x arm."""
    raise NotImplementedError

  def point_inputs(self, points, alpha_t, alpha_c) -> Point:
    """The traced inputs of every world, stacked [W]; alpha_t/alpha_c: [L] numpy arrays."""
    raise NotImplementedError

  def world_rankers(self, n_points: int, arm_ranker: tuple) -> list:
    """Per world, the ranker index of each of its arms (arm_ranker: the treatment's and the
    control's, models.rankers)."""
    return [tuple(arm_ranker[:self.arms])] * self.n_worlds(n_points)

  def point_name(self, points, point: int) -> str:
    """A sweep point's label in result.json's keys: "" when the run has one point."""
    raise NotImplementedError

  def point_result(self, labels, history, worlds, point: int, config) -> dict:
    """result.json's block of one point."""
    raise NotImplementedError

  def log_point(self, log, name, swept: bool, point, config) -> None:
    """The `[result]` line of one label at one point (`swept`: the run has several)."""
    raise NotImplementedError

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

  def n_worlds(self, n_points):
    return n_points + 1

  def world_rankers(self, n_points, arm_ranker):
    return [(arm_ranker[TREATMENT],)] * n_points + [(arm_ranker[CONTROL],)]

  def groups(self, points):
    return [(s, 0, s, "GT") for s in range(len(points))] + [(len(points), 0, -1, "GC")]

  def point_inputs(self, points, alpha_t, alpha_c):
    alpha_t, alpha_c = np.asarray(alpha_t, np.float32), np.asarray(alpha_c, np.float32)
    p = [q.p_treatment for q in points]
    alpha = [alpha_at_gap(alpha_t, alpha_c, q.alpha_gap)[None] for q in points]
    alpha.append(alpha_c[None])
    p.append(0.5)  # GC's p: unused, every user of a global world has its policy.
    # GC explores like the GT worlds (global mode refuses a swept exploration).
    return Point(np.asarray(p, np.float32), np.stack(alpha).astype(np.float32),
                 **exploration_inputs(tuple(points) + points[:1]))

  def point_name(self, points, point):
    if len(points) == 1 or point < 0:
      return ""
    return f"[gap={points[point].alpha_gap:g}]"

  def point_result(self, labels, history, worlds, point, config):
    return points_lib.truth_block(labels, history, worlds, point)

  def log_point(self, log, name, swept, point, config):
    g = point["gte"][name]
    log.info("%s%s: GT %s, GC %s, GTE %s +- %s (sd %s over %d repetitions, %s%%)", name,
             f" at gap {point['alpha_gap']:g}" if swept else "", _g(point["gt"][name]["mean"], 6),
             _g(point["gc"][name]["mean"], 6), _g(g["mean"], 6), _g(g["se"]), _g(g["std"]),
             config.repetitions, _g(g["pct_mean"], 4))

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
  evaluation_fields: ClassVar[tuple] = ("user_var",)  # The user-clustered variance so far.

  @classmethod
  def from_config(cls, config, ds=None):
    del ds
    return cls(config.mode, train_models=config.sim.train_models,
               assignment=config.experiment.assignment)

  def n_worlds(self, n_points):
    return n_points

  def groups(self, points):
    return [(s, a, s, name) for s in range(len(points)) for a, name in enumerate("TC")]

  def point_inputs(self, points, alpha_t, alpha_c):
    alpha_t, alpha_c = np.asarray(alpha_t, np.float32), np.asarray(alpha_c, np.float32)
    p = [q.p_treatment for q in points]
    alpha = [np.stack([alpha_at_gap(alpha_t, alpha_c, q.alpha_gap), alpha_c]) for q in points]
    return Point(np.asarray(p, np.float32), np.stack(alpha).astype(np.float32),
                 **exploration_inputs(points))

  def point_name(self, points, point):
    if len(points) == 1 or point < 0:
      return ""
    q = points[point]
    name = f"[p={q.p_treatment:g},gap={q.alpha_gap:g}"
    if len({r.epsilon for r in points}) > 1:
      name += f",eps={q.epsilon:g}"
    if len({r.temperature for r in points}) > 1:
      name += f",tau={q.temperature:g}"
    return name + "]"

  def point_result(self, labels, history, worlds, point, config):
    extra = {n: e for n, e in estimators.make(config).items() if n != estimators.DEFAULT}
    return points_lib.estimate_block(labels, history, worlds, point,
                                     config.estimator.batch_blocks, extra)

  def log_point(self, log, name, swept, point, config):
    g = point["gte"][name]
    half = {m: _finite_mean(v) for m, v in g["se_per_rep"].items()}
    log.info("%s%s: %s estimate %s (sd %s over %d repetitions; mean 95%% CI half-width %s)",
             name, f" at p={point['p_treatment']:g}, gap {point['alpha_gap']:g}"
             + "".join(f", {f} {point[f]:g}" for f in ("epsilon", "temperature") if f in point)
             if swept else "",
             config.mode, _g(g["mean"], 6), _g(g["std"]), config.repetitions, ", ".join(
                 f"{m} {_g(None if v is None else 1.96 * v)}" for m, v in half.items()))

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


def _finite_mean(values):
  """Mean of the finite values; None (JSON null) if there are none."""
  mean = float(descriptive.finite_mean(values))
  return mean if math.isfinite(mean) else None


def _g(x, digits=2) -> str:
  """A number for a log line; "undefined" for None/NaN (e.g. an sd over one repetition)."""
  return "undefined" if x is None or not math.isfinite(x) else f"{x:.{digits}g}"
