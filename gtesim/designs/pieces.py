"""A design's five pieces, one job each, and the plain ones most designs use.

A design (designs/base.py) is a choice of one piece per job; the compiled step calls the
pieces and nothing else of it:

- `Assignment`: who is treated (Z of the step's users).
- `Exposure`: what each arm's users may be shown (a filter, and the video classes the
  Fenwick sampler keeps a tree for).
- `Learning`: what each arm's models learn from (per-arm masks and weights of the step's
  items, and its own models, e.g. weighting's G), and whether they learn at all.
- `Counting`: which steps' outcomes enter the estimate.
- `Unit`: the randomisation unit of the variance (its per-world bookkeeping, its evaluation
  fields and the `unit` standard error's variance).

Pieces are static (frozen dataclasses, hashed into the compiled step); p and the ranking
weights stay traced inputs (`core.state.Point`). A piece that needs a per-repetition set-up on
the host (user clusters, video arms) names it by `data` and builds it in `rep_data`; it is
`rep.designs[data]` in the step, built once per repetition for every design of a run or a
study's jobs that has a piece with that key.
"""

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from gtesim import prng
from gtesim.stats import variance
from gtesim.stats.estimators.base import COVARIATE_DATA, COVARIATE_FIELDS


def unit_uniform(rep_key, unit):
  """U[0, 1) of a randomisation unit (a cluster or a switchback period) of a repetition."""
  return jax.random.uniform(jax.random.fold_in(prng.stream(rep_key, "assign_unit"), unit))


@dataclasses.dataclass(frozen=True)
class Piece:
  """What every piece may declare: a per-repetition set-up on the host."""
  data: ClassVar[str] = ""  # Its key in RepData.designs ("" when it needs none): a piece
  # whose set-up depends on its settings names them in its key (cluster.Clusters).

  def rep_data(self, ds, train_user, user_enc, key):
    """The piece's per-repetition set-up (numpy), from the repetition's key."""
    raise NotImplementedError


# --- who is treated ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Assignment(Piece):
  def assign(self, rep, users, step_key, p, t):
    """Z [b] bool: which of the step's users are treated."""
    raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class Everyone(Assignment):
  """Every user is treated (a global world has one arm)."""

  def assign(self, rep, users, step_key, p, t):
    return jnp.ones(users.shape, bool)


@dataclasses.dataclass(frozen=True)
class Users(Assignment):
  """"user": one uniform per (repetition, user), compared with p, so every p of a sweep uses
  the same uniforms; "step": a new uniform every step (`experiment.assignment`)."""
  kind: str = "user"

  def assign(self, rep, users, step_key, p, t):
    if self.kind == "user":
      key = prng.stream(rep.key, "assign")
      u = jax.vmap(lambda i: jax.random.uniform(jax.random.fold_in(key, i)))(users)
    else:
      u = jax.random.uniform(step_key, users.shape)
    return u < p


# --- what each arm may be shown -----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Exposure(Piece):
  """Every user may be shown every video, from one class."""

  def allowed(self, rep, point, z):
    """videos [b, ...] -> bool [b, ...]: the videos each user may be shown; None: all."""
    return None

  def user_class(self, arm):
    """[b] int32: the video class (Fenwick tree) each user draws its candidates from."""
    return jnp.zeros_like(arm)

  def video_classes(self, rep, point, videos):
    """[bool masks of the videos of each class], or None with one class."""
    return None


# --- what each arm learns from --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Learning(Piece):
  """Pooled: every arm's models learn from every recommended item, weight 1."""
  trains: bool = True  # False: the label models stay at the production state (their loss
  # is still reported).

  def init_state(self, spec, rep, point):
    """The piece's own state in a fresh world (a pytree; () when it has none)."""
    return ()

  def weights(self, spec, state, rep, point, pairs, z, rec_ok, key):
    """(state, mask [A, b], weight [A, b], {step metric: value}): arm a's loss is
    sum(mask * weight * loss) / sum(mask) over the step's recommended items."""
    ok = rec_ok.astype(jnp.float32)
    mask = jnp.broadcast_to(ok, (spec.design.arms,) + ok.shape)
    return state, mask, jnp.ones_like(mask), {}

  def extra_flops(self, spec) -> float:
    """Model FLOPs of one step beyond the label models' (bench.py)."""
    return 0.0


def own_arm_masks(z, rec_ok):
  """[2, b] masks of the step's items: treated users' for arm 0, control users' for arm 1."""
  ok = rec_ok.astype(jnp.float32)
  zf = z.astype(jnp.float32)
  return jnp.stack([ok * zf, ok * (1 - zf)])


@dataclasses.dataclass(frozen=True)
class OwnArm(Learning):
  """Data-diverted: the treatment models learn from treated users' items only, the control
  models from control users' items only."""

  def weights(self, spec, state, rep, point, pairs, z, rec_ok, key):
    mask = own_arm_masks(z, rec_ok)
    return state, mask, jnp.ones_like(mask), {}


# --- which steps count ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Counting(Piece):
  """Every step's outcomes enter the estimate."""

  def counted(self, t):
    """Whether step t's outcomes enter the estimate."""
    return jnp.bool_(True)


# --- the randomisation unit of the variance -------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Unit(Piece):
  """No unit of its own (global worlds: no estimate, nothing to tally)."""
  fields: ClassVar[tuple] = ()  # Names of `evaluate`'s outputs, [W, L] each.

  def init_state(self, spec, rep, point):
    return ()

  def tally(self, state, position, in_arm, y_arm):
    """The state after the step's counted outcomes (in_arm [A, b], y_arm [A, b, L])."""
    return state

  def evaluate(self, spec, state, rep) -> dict:
    """Its evaluation of a world so far ({field: [L]})."""
    return {}

  def variance(self, steps_sum, steps_n, evals: dict, e: int, point: int):
    """(variance [B, L] with the design's randomisation units, its degrees of freedom [B, L]
    (variance.arm_clustered_variance)) for the `unit` standard error, or (None, None)."""
    return None, None


@struct.dataclass
class UserSums:
  """Each train user's summed counted outcomes and recommendations per arm."""
  user_sum: jax.Array  # [n_train, A, L] float32.
  user_n: jax.Array  # [n_train, A] float32.


@dataclasses.dataclass(frozen=True)
class UserUnit(Unit):
  """Users are the units: per-user sums and the user-clustered variance so far (the `user`
  standard error); no `unit` standard error beyond it. With `covariate` (estimator.names holds
  cuped), also the covariate fields of each user's pre-experiment outcome (COVARIATE_FIELDS,
  stats/variance.covariate_moments)."""
  covariate: bool = dataclasses.field(default=False, kw_only=True)  # Keyword-only: the
  # subclasses' own fields stay positional.
  unit_fields: ClassVar[tuple] = ("user_var",)

  @property
  def fields(self):
    return self.unit_fields + (COVARIATE_FIELDS if self.covariate else ())

  @property
  def data(self):
    return COVARIATE_DATA if self.covariate else ""

  def rep_data(self, ds, train_user, user_enc, key):
    """[U, L] float32: each user's mean label over the logged rows pretraining draws from (the
    pretraining-only rows where the data has them, else all rows); a user without such rows
    gets the train users' mean of those rows. Fixed before assignment: a valid covariate."""
    del user_enc, key
    n_labels = len(ds.label_names)
    total, count = ds.pool_sums, ds.pool_rows.astype(np.float64)  # Summed by dataset.load.
    train = train_user & (count > 0)
    fill = (total[train].sum(0) / count[train].sum() if train.any()
            else np.zeros(n_labels))
    with np.errstate(invalid="ignore", divide="ignore"):
      mean = np.where(count[:, None] > 0, total / np.maximum(count, 1)[:, None], fill)
    return mean.astype(np.float32)

  def init_state(self, spec, rep, point):
    return UserSums(jnp.zeros((spec.n_train, spec.design.arms, len(spec.models)), jnp.float32),
                    jnp.zeros((spec.n_train, spec.design.arms), jnp.float32))

  def tally(self, state, position, in_arm, y_arm):
    return state.replace(user_sum=state.user_sum.at[position].add(jnp.moveaxis(y_arm, 1, 0)),
                         user_n=state.user_n.at[position].add(in_arm.T.astype(jnp.float32)))

  def evaluate(self, spec, state, rep):
    out = {"user_var": variance.clustered_variance(state.user_sum, state.user_n, xp=jnp)}
    if self.covariate:
      x = rep.designs[COVARIATE_DATA][rep.train_users]  # [n_train, L]
      out.update(zip(COVARIATE_FIELDS, variance.covariate_moments(
          state.user_sum, state.user_n, x, xp=jnp)))
    return out
