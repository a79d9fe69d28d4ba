"""The simulation step (SPEC §4) and evaluation, as pure functions of one repetition's world.

One step in one world: sample train users, draw candidates among each user's eligible items
(the environment's, see environments.py), score them with the models of each user's arm and
that arm's alphas, recommend the argmax, read its outcome (logged, or drawn from the latent
model), train the label models on the recommended items with the design's masks and weights,
and mark the items used. Keys depend on (repetition, step) only, never on the world, so the
worlds of a repetition (GT and GC, the points of a sweep) share user batches and candidate
and outcome random numbers.
"""

import dataclasses
import math

import jax
import jax.numpy as jnp
from flax import struct
from jax import lax

from gtesim import designs
from gtesim import environments
from gtesim import estimators
from gtesim import metrics
from gtesim import models as models_lib
from gtesim import rng
from gtesim.data.packing import window_index
from gtesim.device_data import Env, EvalRows, RepData, Static, pair_features


@struct.dataclass
class World:
  """The state of one world of one repetition."""
  params: tuple  # [arm][label] model parameters.
  opt_state: tuple  # [arm][label] optimizer states.
  g_params: tuple  # (weight-model parameters,) under the weighting design, else ().
  g_opt: tuple
  used: jax.Array  # replay/matrix: [P, C] bool, slots recommended in this world; latent:
  # [n_train, H] int32, the video recommended to each train user in each epoch (-1: none).
  user_sum: jax.Array | None  # [n_train, A, L] float32: each train user's summed outcomes
  # per arm (A/B designs; None in global mode).
  user_n: jax.Array | None  # [n_train, A] float32: each train user's recommendations per arm.


@struct.dataclass
class StepOut:
  """What one step of one world reports (summed over the step's users)."""
  outcome_sum: jax.Array  # [A, L] sum of the recommended items' labels, per arm.
  outcome_sq: jax.Array  # [A, L] sum of their squares.
  n_recs: jax.Array  # [A] users who got a recommendation, per arm.
  n_exhausted: jax.Array  # [A] sampled users with no eligible candidate, per arm.
  n_short: jax.Array  # [A] sampled users with fewer eligible candidates than n_candidate.
  loss: jax.Array  # [A, L] training loss on the step's items (before the update).
  weight_model: jax.Array  # [3] weight model's loss, AUC, accuracy on the step's items
  # before it trains on them (NaN without a weight model).


@dataclasses.dataclass(frozen=True)
class SimSpec:
  """Static description of the compiled simulation."""
  static: Static
  models: tuple  # LabelModel per label.
  batch_size: int
  n_candidate: int
  updates_per_step: int
  n_train: int  # Train users per repetition.
  design: designs.Design = designs.Design()
  weight_model: object = None  # LabelModel of G under the weighting design.
  environment: str = "replay"  # sim.environment.
  retrieval: str = "uniform"  # sim.retrieval.
  latent_columns: tuple = ()  # latent: the outcome column of each label.
  expected: bool = False  # latent: outcomes are expectations, not draws.
  candidate_draws: int = 0  # latent: catalogue draws per user and step.
  history_slots: int = 0  # latent: H, columns of the recommendation memory.
  n_units: int = 0  # Cluster design: number of cluster ids.

  @property
  def steps_per_epoch(self) -> int:
    return self.n_train // self.batch_size

  @property
  def tracks_users(self) -> bool:
    """A/B designs keep per-user sums for the user-clustered standard error."""
    return self.design.arms == 2


def sample_users(spec: SimSpec, rep: RepData, t):
  """`batch_size` distinct train users: step t's slice of its epoch's random permutation.

  Returns (user indices [b], their positions among the train users [b]).
  """
  epoch, within = t // spec.steps_per_epoch, t % spec.steps_per_epoch
  pos = within * spec.batch_size + jnp.arange(spec.batch_size)
  key = jax.random.fold_in(jax.random.fold_in(rng.stream(rep.key, "sim"), 0), epoch)
  position = rng.permute(pos, spec.n_train, key)
  return rep.train_users[position], position


def step_keys(rep: RepData, t):
  """(candidate, dropout, assignment, outcome) keys of step t, shared by all worlds of a
  repetition."""
  key = jax.random.fold_in(jax.random.fold_in(rng.stream(rep.key, "sim"), 1), t)
  return tuple(jax.random.fold_in(key, i) for i in range(4))


def slot_noise(key, shape):
  """Uniform [0, 1) float32 keys of a [b, S] window, ~4x cheaper than jax.random.uniform.

  A keyed bijection of the slot position (two rounds of a 32-bit mixer around a random key
  pair), so the keys of one step are distinct 32-bit values; their top 24 bits become the
  float, the resolution of jax.random.uniform's float32.
  """
  seeds = jax.random.bits(key, (2,), jnp.uint32)
  position = jnp.arange(math.prod(shape), dtype=jnp.uint32).reshape(shape)
  bits = rng.mix32(rng.mix32(position ^ seeds[0]) + seeds[1])
  return (bits >> 8).astype(jnp.float32) * jnp.float32(1.0 / (1 << 24))


def candidates(spec: SimSpec, env: Env, rep: RepData, used, users, key, allowed=None):
  """Up to n_candidate slots per user among the eligible ones (train video, unused): uniform,
  or weighted without replacement by the videos' retrieval weights (environments.py).

  `allowed` (videos [b, ...] -> bool [b, ...]) restricts the eligible videos further
  (co-diverted: the user's arm's videos).

  Returns (page [b, k], col [b, k], video [b, k], valid [b, k], n_eligible [b]).
  """
  static = spec.static
  pages, page_ok = window_index(env.first_page, env.n_pages, static.page_slots,
                                static.window_pages, users)
  pages = jnp.where(page_ok, pages, 0)
  video = env.page_video[pages]
  eligible = (page_ok[..., None] & (video >= 0) & rep.train_video[jnp.maximum(video, 0)] &
              ~used[pages])
  if allowed is not None:
    eligible &= allowed(jnp.maximum(video, 0))
  b = users.shape[0]
  eligible = eligible.reshape(b, -1)
  noise = slot_noise(key, eligible.shape)
  if spec.retrieval == "popularity":
    weight = env.video_weight[jnp.maximum(video, 0)].reshape(b, -1)
    noise = jnp.log(noise + jnp.float32(2.0 ** -25)) / weight
  top, idx = lax.top_k(jnp.where(eligible, noise, -jnp.inf), spec.n_candidate)
  rows = jnp.arange(b)[:, None]
  page = pages[rows, idx // static.page_slots]
  col = idx % static.page_slots
  return page, col, video.reshape(b, -1)[rows, idx], top > -jnp.inf, jnp.sum(eligible, axis=1)


def predictions(models, params, x):
  """[L, ...] predictions of every label model on features x."""
  return jnp.stack([m.predict(m.apply(p, x)) for m, p in zip(models, params)])


def train_update(models, params, opt_state, x, y, weight, n, key, n_updates: int):
  """`n_updates` optimizer updates of each model on one set of items.

  Args:
    models: LabelModels; params and opt_state per model.
    x, y: [n_rows, d] features, [n_rows, len(models)] labels.
    weight: [n_rows] per-item weights (0 masks a row out).
    n: the 1/n of the loss (number of items this update trains on).
    key: dropout key.

  Returns:
    (params, opt_state, [len(models)] loss before the first update).
  """
  new_params, new_opt, losses = [], [], []
  grad_fn = jax.value_and_grad(models_lib.weighted_loss, argnums=1)
  for l, (model, p, o) in enumerate(zip(models, params, opt_state)):
    first = None
    for u in range(n_updates):
      loss, grads = grad_fn(model, p, x, y[:, l], weight, n,
                            jax.random.fold_in(key, l * n_updates + u))
      updates, o = model.optimizer.update(grads, o, p)
      p = jax.tree.map(jnp.add, p, updates)
      first = loss if first is None else first
    new_params.append(p)
    new_opt.append(o)
    losses.append(first)
  return tuple(new_params), tuple(new_opt), jnp.stack(losses)


def _weight_model_step(spec: SimSpec, world: World, x, z, rec_ok, n, key):
  """Updates G on (x, Z) of the step's items; returns (g_params, g_opt, [3] metrics before)."""
  g_model = spec.weight_model
  raw = g_model.apply(world.g_params[0], x)
  zf = z.astype(jnp.float32)
  before = jnp.stack([metrics.masked_mean(g_model.loss(raw, zf), rec_ok),
                      metrics.auc(raw, zf, rec_ok),
                      metrics.masked_mean((raw > 0) == z, rec_ok)])
  g_params, g_opt, _ = train_update((g_model,), world.g_params, world.g_opt, x, zf[:, None],
                                    rec_ok.astype(jnp.float32), n, key, spec.updates_per_step)
  return g_params, g_opt, before


def step(spec: SimSpec, env: Env, rep: RepData, point: designs.Point, world: World, t):
  """One simulation step of one world; returns (new World, StepOut)."""
  design = spec.design
  users, position = sample_users(spec, rep, t)
  cand_key, dropout_key, assign_key, outcome_key = step_keys(rep, t)
  cluster = rep.user_cluster[users] if design.name == "cluster" else None
  z = designs.assign(design, rep.key, users, assign_key, point.p_treatment, t, cluster)
  arm = designs.arm_of(z) if design.arms == 2 else jnp.zeros(users.shape, jnp.int32)
  allowed = None
  if design.name == "codiverted":
    def allowed(videos):  # The videos of each user's own arm.
      treated = designs.video_treated(design, rep.video_u, videos, point.p_treatment)
      return treated == z.reshape(z.shape + (1,) * (videos.ndim - 1))
  latent = spec.environment == "latent"
  if latent:
    video, valid, n_eligible = environments.catalogue_candidates(
        spec.n_candidate, spec.candidate_draws, env.block_cdf, env.within_cdf, rep.train_video,
        world.used[position], slot_noise(cand_key, (users.shape[0], spec.candidate_draws, 2)),
        allowed)
  else:
    page, col, video, valid, n_eligible = candidates(spec, env, rep, world.used, users,
                                                     cand_key, allowed)
  x = pair_features(spec.static, env, rep, users, video)
  scores = jnp.stack([jnp.einsum("l,lbk->bk", point.alpha[a], predictions(spec.models, p, x))
                      for a, p in enumerate(world.params)])
  rows = jnp.arange(users.shape[0])
  choice = jnp.argmax(jnp.where(valid, scores[arm, rows], -jnp.inf), axis=1)
  rec_ok = valid[:, 0]
  if latent:
    rec_video = video[rows, choice]
    y = environments.latent_outcomes(env.latent, spec.latent_columns, spec.expected, users,
                                     rec_video, outcome_key)
    used = world.used.at[position, t // spec.steps_per_epoch].set(
        jnp.where(rec_ok, rec_video, -1))
  else:
    rec_page, rec_col = page[rows, choice], col[rows, choice]
    y = env.page_labels[rec_page, rec_col]
    used = world.used.at[jnp.where(rec_ok, rec_page, world.used.shape[0]), rec_col].set(
        True, mode="drop")
  x_rec = x[rows, choice]
  n_recs = jnp.sum(rec_ok)

  g_params, g_opt = world.g_params, world.g_opt
  g_metrics = jnp.full((3,), jnp.nan)
  g = None
  if design.uses_weight_model:
    x_g = designs.weight_model_input(design, x_rec, spec.static.user_layout.width)
    g_params, g_opt, g_metrics = _weight_model_step(spec, world, x_g, z, rec_ok, n_recs,
                                                    jax.random.fold_in(dropout_key, design.arms))
    weighting_g = g_params if design.g_first else world.g_params  # G after or before update.
    g = jax.nn.sigmoid(spec.weight_model.apply(weighting_g[0], x_g))
  mask, weight = designs.training_weights(design, z, rec_ok, point.p_treatment, g)
  params, opt_state, losses = [], [], []
  for a in range(design.arms):
    if design.train_models:
      p, o, loss = train_update(spec.models, world.params[a], world.opt_state[a], x_rec, y,
                                mask[a] * weight[a], jnp.sum(mask[a]),
                                jax.random.fold_in(dropout_key, a), spec.updates_per_step)
    else:
      p, o = world.params[a], world.opt_state[a]
      loss = jnp.stack([models_lib.weighted_loss(m, pl, x_rec, y[:, l], mask[a] * weight[a],
                                                 jnp.sum(mask[a]))
                        for l, (m, pl) in enumerate(zip(spec.models, p))])
    params.append(p)
    opt_state.append(o)
    losses.append(loss)

  arm_of = arm[None, :] == jnp.arange(design.arms)[:, None]  # [A, b]
  in_arm = arm_of & rec_ok[None, :] & designs.counted(design, t)  # Enters the estimate.
  yw = jnp.where(in_arm[..., None], y[None], 0.0)  # [A, b, L]
  user_sum, user_n = world.user_sum, world.user_n
  if spec.tracks_users:
    user_sum = user_sum.at[position].add(jnp.moveaxis(yw, 1, 0))
    user_n = user_n.at[position].add(in_arm.T.astype(jnp.float32))
  out = StepOut(jnp.sum(yw, axis=1), jnp.sum(yw * yw, axis=1), jnp.sum(in_arm, axis=1),
                jnp.sum(arm_of & (n_eligible == 0), axis=1),
                jnp.sum(arm_of & (n_eligible < spec.n_candidate), axis=1),
                jnp.stack(losses), g_metrics)
  return World(tuple(params), tuple(opt_state), g_params, g_opt, used, user_sum, user_n), out


def evaluate_models(spec: SimSpec, env: Env, rep: RepData, params, rows: EvalRows) -> dict:
  """Loss per label, AUC of binary labels, relative error of numerical ones on y > 0."""
  video = env.page_video[rows.page, rows.col]
  x = pair_features(spec.static, env, rep, rows.user, video)
  y = env.page_labels[rows.page, rows.col]
  out = {}
  for l, (model, p) in enumerate(zip(spec.models, params)):
    raw = model.apply(p, x)
    out[f"{model.name}/loss"] = metrics.masked_mean(model.loss(raw, y[:, l]), rows.mask)
    if model.kind == "binary":
      out[f"{model.name}/auc"] = metrics.auc(raw, y[:, l], rows.mask)
    else:
      out[f"{model.name}/rel_error"] = metrics.relative_error(model.predict(raw), y[:, l],
                                                              rows.mask)
  return out


def clustered_variance(world: World, unit=None, n_units: int = 0):
  """Variance [L] of the naive estimate with users (or, given `unit` [n_train], the clusters
  of the train users) as independent units: see estimators.clustered_variance."""
  unit_sum, unit_n = (world.user_sum, world.user_n) if unit is None else unit_sums(
      world, unit, n_units)
  return estimators.clustered_variance(unit_sum, unit_n, xp=jnp)


def unit_sums(world: World, unit, n_units: int):
  """Per-unit outcome sums [n_units, A, L] and recommendation counts [n_units, A] from the
  per-user ones (`unit` [n_train]: each train user's unit)."""
  return (jax.ops.segment_sum(world.user_sum, unit, num_segments=n_units),
          jax.ops.segment_sum(world.user_n, unit, num_segments=n_units))
