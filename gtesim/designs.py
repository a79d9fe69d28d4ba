"""Experiment designs (SPEC §5): which arm a user is in, and what each arm's models learn from.

A design is static (it shapes the compiled step); the treatment probability p and the arms'
ranking weights are traced inputs (`Point`), so a sweep over them is a map/vmap axis of one
compiled call. Global mode runs worlds of one arm each (GT ranks with alpha_T, GC with
alpha_C); an A/B design runs one world with two arms, 0 = treatment and 1 = control.

The designs differ in three places: who is treated (`assign`: per user; per cluster of users;
per switchback period, the whole population at once), what a user may be shown (co-diverted:
only videos randomised to the user's arm) and what each arm's models learn from
(`training_weights`).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from gtesim import rng

MODES = ("global", "pooling", "splitting", "snapshot", "weighting", "codiverted", "cluster",
         "switchback")
AB_DESIGNS = MODES[1:]
TREATMENT, CONTROL = 0, 1


@struct.dataclass
class Point:
  """The traced inputs of one world: p and the ranking weights of its arms."""
  p_treatment: jax.Array  # [] float32: P(user is treated); unused in global mode.
  alpha: jax.Array  # [A, L] float32: ranking weights of the world's arms.


@dataclasses.dataclass(frozen=True)
class Design:
  """The static part of a mode (see the module docstring)."""
  name: str = "global"
  assignment: str = "user"  # "user": Z drawn once per user; "step": redrawn every step.
  train_models: bool = True  # False: the label models stay at the production state.
  weight_clip: float = 0.0  # Weighting: upper clip of G/p and (1-G)/(1-p); 0 = none.
  g_first: bool = False  # Weighting: weights from G after (True) or before its update.
  weight_features: str = "all"  # Weighting: G sees "all" features or the "video" ones.
  p_items: float | None = None  # Co-diverted: P(video in treatment); None = p_treatment.
  diverted_training: bool = True  # Co-diverted: each arm trains on its own arm's items.
  switch_every: int = 1  # Switchback: steps per period.
  switch_order: str = "balanced"  # Switchback: "balanced", "random" or "alternating".
  n_periods: int = 1  # Switchback: periods in the run, ceil(n_steps / switch_every).
  switch_burn_in: int = 0  # Switchback: first steps of a period left out of the estimate.

  @property
  def arms(self) -> int:
    return 1 if self.name == "global" else 2

  @property
  def uses_weight_model(self) -> bool:
    return self.name == "weighting"


def design_of(config) -> Design:
  exp = config.experiment
  return Design(
      name=config.mode, assignment=exp.assignment,
      train_models=config.sim.train_models and config.mode != "snapshot",
      weight_clip=exp.weight_clip, g_first=exp.g_update == "before",
      weight_features=exp.weight_features, p_items=exp.p_items,
      diverted_training=exp.codiverted_training == "diverted", switch_every=exp.switch_every,
      switch_order=exp.switch_order, switch_burn_in=exp.switch_burn_in,
      n_periods=-(-config.sim.n_steps // exp.switch_every))


def alpha_at_gap(alpha_t, alpha_c, gap):
  """alpha_T(lambda) = (1 - lambda) alpha_C + lambda alpha_T: lambda = 0 is the A/A."""
  return (1.0 - gap) * alpha_c + gap * alpha_t


def _unit_uniform(rep_key, unit):
  """U[0, 1) of a randomisation unit (a cluster or a switchback period) of a repetition."""
  return jax.random.uniform(jax.random.fold_in(rng.stream(rep_key, "assign_unit"), unit))


def assign(design: Design, rep_key, users, step_key, p, t, cluster):
  """Z [b] bool (treated) of a step's users.

  "user": one uniform per (repetition, user), compared with p, so every p of a sweep uses the
  same uniforms; "step": a new uniform every step. The cluster design draws one uniform per
  cluster (`cluster` [b]: the users' clusters). Switchback treats period t // switch_every:
  "balanced", when its rank in a random permutation of the G periods is below round(p G)
  (exactly that many treated periods, so both arms occur whenever 1 <= round(p G) < G);
  "random", when its own uniform is below p (i.i.d.; some repetitions may lack an arm); or
  alternately T, C, T, ... from a random first arm.
  """
  if design.arms == 1:
    return jnp.ones(users.shape, bool)
  if design.name == "cluster":
    return jax.vmap(lambda c: _unit_uniform(rep_key, c))(cluster) < p
  if design.name == "switchback":
    period = t // design.switch_every
    if design.switch_order == "alternating":
      first = _unit_uniform(rep_key, jnp.uint32(0xFFFFFFFF)) < 0.5  # Reserved unit index.
      z = (period % 2 == 0) == first
    elif design.switch_order == "balanced":
      key = jax.random.fold_in(rng.stream(rep_key, "assign_unit"), jnp.uint32(0xFFFFFFFE))
      rank = rng.permute(jnp.asarray(period)[None], design.n_periods, key)[0]
      z = rank < jnp.round(p * design.n_periods)
    else:
      z = _unit_uniform(rep_key, period) < p
    return jnp.broadcast_to(z, users.shape)
  if design.assignment == "user":
    key = rng.stream(rep_key, "assign")
    u = jax.vmap(lambda i: jax.random.uniform(jax.random.fold_in(key, i)))(users)
  else:
    u = jax.random.uniform(step_key, users.shape)
  return u < p


def counted(design: Design, t):
  """Whether step t's outcomes enter the estimate (switchback leaves out each period's first
  `switch_burn_in` steps, while the models adapt to the switch)."""
  if design.name != "switchback":
    return jnp.bool_(True)
  return t % design.switch_every >= design.switch_burn_in


def video_treated(design: Design, video_u, videos, p):
  """Co-diverted: whether videos are in the treatment arm (their per-repetition uniform
  `video_u` below p_items, which defaults to p)."""
  p_items = p if design.p_items is None else design.p_items
  return video_u[videos] < p_items


def video_uniforms(rep_key, n_videos: int):
  """[V] uniforms of a repetition's videos (co-diverted video assignment), on the host."""
  return np.asarray(jax.random.uniform(rng.stream(rep_key, "assign_video"), (n_videos,)))


def arm_of(z):
  """Arm index [b] of each user: treatment (0) or control (1)."""
  return jnp.where(z, TREATMENT, CONTROL).astype(jnp.int32)


def training_weights(design: Design, z, rec_ok, p, g=None):
  """Per-arm masks and weights [A, b] of one step's recommended items (SPEC §5).

  Arm a's loss is sum(mask * weight * loss) / sum(mask): pooling (and cluster, switchback,
  pooled co-diverted) trains both arms on every item; splitting and diverted co-diverted mask
  each arm to its own users' items; weighting keeps every item and weights it by G/p
  (treatment) or (1-G)/(1-p) (control).
  """
  ok = rec_ok.astype(jnp.float32)
  zf = z.astype(jnp.float32)
  if design.name == "splitting" or (design.name == "codiverted" and design.diverted_training):
    mask = jnp.stack([ok * zf, ok * (1 - zf)])
  else:
    mask = jnp.broadcast_to(ok, (design.arms,) + ok.shape)
  if not design.uses_weight_model:
    return mask, jnp.ones_like(mask)
  weight = jnp.stack([g / p, (1 - g) / (1 - p)])
  if design.weight_clip > 0:
    weight = jnp.minimum(weight, design.weight_clip)
  return mask, weight


def weight_model_input(design: Design, x, user_width: int):
  """The features G sees: all of them, or only the video part (no user features)."""
  return x[..., user_width:] if design.weight_features == "video" else x


@dataclasses.dataclass(frozen=True)
class Worlds:
  """The worlds a run simulates per repetition, and the sweep points they belong to.

  Global mode: worlds 0..S-1 are GT at each point's alpha gap and world S is GC (shared by
  every point: alpha_C does not depend on the gap). A/B designs: world s is point s, with arms
  T and C. A point is (p_treatment, alpha_gap); the points of a sweep are the product of the
  swept values.
  """
  mode: str
  points: tuple  # ((p_treatment, alpha_gap), ...)

  @property
  def n_worlds(self) -> int:
    return len(self.points) + (self.mode == "global")

  @property
  def arms(self) -> int:
    return 1 if self.mode == "global" else 2

  def groups(self) -> list:
    """(world, arm, point, name) of every world x arm; GC's point is -1 (all points)."""
    if self.mode == "global":
      return [(s, 0, s, "GT") for s in range(len(self.points))] + [
          (len(self.points), 0, -1, "GC")]
    return [(s, a, s, name) for s in range(len(self.points)) for a, name in enumerate("TC")]

  def point_inputs(self, alpha_t, alpha_c) -> Point:
    """The traced inputs of every world, stacked [W]; alpha_t/alpha_c: [L] numpy arrays."""
    alpha_t, alpha_c = np.asarray(alpha_t, np.float32), np.asarray(alpha_c, np.float32)
    p = [q for q, _ in self.points]
    if self.mode == "global":
      alpha = [alpha_at_gap(alpha_t, alpha_c, gap)[None] for _, gap in self.points]
      alpha.append(alpha_c[None])
      p.append(0.5)
    else:
      alpha = [np.stack([alpha_at_gap(alpha_t, alpha_c, gap), alpha_c])
               for _, gap in self.points]
    return Point(np.asarray(p, np.float32), np.stack(alpha).astype(np.float32))


def worlds_of(config) -> Worlds:
  """The run's worlds from `experiment.p_treatment` and the `sweep` section: the listed
  `sweep.points`, else the product of `sweep.p_treatment` and `sweep.alpha_gap`."""
  if config.sweep.points:
    return Worlds(config.mode, tuple((float(p), float(g)) for p, g in config.sweep.points))
  ps = tuple(config.sweep.p_treatment) or (config.experiment.p_treatment,)
  gaps = tuple(config.sweep.alpha_gap) or (1.0,)
  return Worlds(config.mode, tuple((float(p), float(g)) for p in ps for g in gaps))
