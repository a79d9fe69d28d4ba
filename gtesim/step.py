"""The simulation step (SPEC §4) and evaluation, as pure functions of device arrays.

One step in one world: sample train users, draw candidates uniformly among each user's
eligible slots, score them with the world's label models and alphas, recommend the argmax,
read its logged labels, train every label model on the recommended items with per-item
weights, and mark them used. Keys depend on (repetition, step) only, never on the world, so
worlds of a repetition share user batches and candidate random numbers.
"""

import dataclasses
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from gtesim import metrics
from gtesim import models as models_lib
from gtesim import rng
from gtesim.device_data import Env, EvalRows, RepData, Static, pair_features
from gtesim.data.packing import window_index


class WorldState(NamedTuple):
  params: tuple  # [arm][label] model parameters.
  opt_state: tuple  # [arm][label] optimizer states.
  g_params: tuple  # (weight-model parameters,) under the weighting design, else ().
  g_opt: tuple
  used: jax.Array  # [P, C] bool: slots recommended in this world.


class StepOut(NamedTuple):
  outcome_sum: jax.Array  # [A, L] sum of the recommended items' labels, per arm.
  outcome_sq: jax.Array  # [A, L] sum of their squares.
  n_recs: jax.Array  # [A] users who got a recommendation, per arm.
  n_exhausted: jax.Array  # [A] sampled users with no eligible candidate, per arm.
  n_short: jax.Array  # [A] sampled users with fewer eligible candidates than n_candidate.
  loss: jax.Array  # [A, L] training loss on the step's items (before the update).
  weight_model: jax.Array  # [3] weight model's loss, AUC, accuracy on the step's items
  # before it trains on them (NaN without a weight model).


@dataclasses.dataclass(frozen=True)
class Design:
  """How a world's users map to arms and what each arm's models train on (SPEC §5).

  global: one arm per world, all users in it. pooling / splitting / snapshot / weighting:
  two arms (0 = treatment, 1 = control) in one world.
  """
  name: str = "global"
  p_treatment: float = 0.5
  assignment: str = "user"  # "user": Z drawn once per user; "step": redrawn every step.
  train_models: bool = True  # False: models stay at the pretrained state.
  weight_clip: float = 0.0  # Weighting: upper clip of G/p and (1-G)/(1-p); 0 = none.
  g_first: bool = False  # Weighting: update G on the step's data before computing weights.

  @property
  def arms(self):
    return 1 if self.name == "global" else 2

  @property
  def uses_weight_model(self):
    return self.name == "weighting"


@dataclasses.dataclass(frozen=True)
class SimSpec:
  """Static description of the compiled simulation."""
  static: Static
  models: tuple  # LabelModel per label.
  batch_size: int
  n_candidate: int
  updates_per_step: int
  n_train: int  # Train users per repetition.
  design: Design = Design()
  weight_model: object = None  # LabelModel of G under the weighting design.

  @property
  def steps_per_epoch(self):
    return self.n_train // self.batch_size


def _mix32(x):
  x = (x ^ (x >> 16)) * jnp.uint32(0x7FEB352D)
  x = (x ^ (x >> 15)) * jnp.uint32(0x846CA68B)
  return x ^ (x >> 16)


def permute(index, n: int, key):
  """A keyed pseudo-random bijection of [0, n) applied to `index` (4-round Feistel network
  on the next even power of two, cycle-walking back into range): O(len(index)) work."""
  half = max(1, math.ceil(max(math.ceil(math.log2(max(n, 2))), 1) / 2))
  mask = jnp.uint32((1 << half) - 1)
  round_keys = jax.random.bits(key, (4,), jnp.uint32)

  def feistel(x):
    left, right = x >> half, x & mask
    for r in range(4):
      left, right = right, left ^ (_mix32(right ^ round_keys[r]) & mask)
    return (left << half) | right

  out = lax.while_loop(lambda x: jnp.any(x >= n), lambda x: jnp.where(x >= n, feistel(x), x),
                       feistel(index.astype(jnp.uint32)))
  return out.astype(jnp.int32)


def sample_users(spec: SimSpec, rep: RepData, t):
  """`batch_size` distinct train users: step t's slice of its epoch's random permutation."""
  epoch, within = t // spec.steps_per_epoch, t % spec.steps_per_epoch
  pos = within * spec.batch_size + jnp.arange(spec.batch_size)
  key = jax.random.fold_in(jax.random.fold_in(rng.stream(rep.key, "sim"), 0), epoch)
  return rep.train_users[permute(pos, spec.n_train, key)]


def step_keys(rep: RepData, t):
  """(candidate, dropout, assignment) keys of step t, shared by all worlds of a repetition."""
  key = jax.random.fold_in(jax.random.fold_in(rng.stream(rep.key, "sim"), 1), t)
  return jax.random.fold_in(key, 0), jax.random.fold_in(key, 1), jax.random.fold_in(key, 2)


def assign(design: Design, rep: RepData, users, step_key):
  """Z [b] bool: treated users. "user": a per-(repetition, user) coin; "step": a new coin."""
  if design.assignment == "user":
    key = rng.stream(rep.key, "assign")
    u = jax.vmap(lambda i: jax.random.uniform(jax.random.fold_in(key, i)))(users)
  else:
    u = jax.random.uniform(step_key, users.shape)
  return u < design.p_treatment


def slot_noise(key, shape):
  """Uniform [0, 1) float32 keys of a [b, S] window, ~4x cheaper than jax.random.uniform.

  A keyed bijection of the slot position (two rounds of a 32-bit mixer around a random key
  pair), so the keys of one step are distinct 32-bit values; their top 24 bits become the
  float, the resolution of jax.random.uniform's float32.
  """
  seeds = jax.random.bits(key, (2,), jnp.uint32)
  position = jnp.arange(math.prod(shape), dtype=jnp.uint32).reshape(shape)
  bits = _mix32(_mix32(position ^ seeds[0]) + seeds[1])
  return (bits >> 8).astype(jnp.float32) * jnp.float32(1.0 / (1 << 24))


def candidates(spec: SimSpec, env: Env, rep: RepData, used, users, key):
  """Up to n_candidate slots per user, uniform among the eligible ones (train video, unused).

  Returns (page [b, k], col [b, k], video [b, k], valid [b, k], n_eligible [b]).
  """
  static = spec.static
  pages, page_ok = window_index(env.first_page, env.n_pages, static.page_slots,
                                static.window_pages, users)
  pages = jnp.where(page_ok, pages, 0)
  video = env.page_video[pages]
  eligible = (page_ok[..., None] & (video >= 0) & rep.train_video[jnp.maximum(video, 0)] &
              ~used[pages])
  b = users.shape[0]
  eligible = eligible.reshape(b, -1)
  top, idx = lax.top_k(jnp.where(eligible, slot_noise(key, eligible.shape), -1.0),
                       spec.n_candidate)
  rows = jnp.arange(b)[:, None]
  page = pages[rows, idx // static.page_slots]
  col = idx % static.page_slots
  return page, col, video.reshape(b, -1)[rows, idx], top >= 0, jnp.sum(eligible, axis=1)


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


def design_weights(design: Design, z, rec_ok, g=None):
  """Per-arm training masks and weights [A, b] of one step's items (SPEC §5).

  An arm's loss is sum(mask * weight * loss) / sum(mask): splitting masks each arm to its own
  users; weighting keeps every row and weights it by G/p (treatment) or (1-G)/(1-p) (control).
  """
  ok = rec_ok.astype(jnp.float32)
  if design.name == "splitting":
    mask = jnp.stack([ok * z, ok * (1 - z)])
  else:
    mask = jnp.broadcast_to(ok, (design.arms,) + ok.shape)
  if design.name != "weighting":
    return mask, jnp.ones_like(mask)
  p = design.p_treatment
  weight = jnp.stack([g / p, (1 - g) / (1 - p)])
  if design.weight_clip > 0:
    weight = jnp.minimum(weight, design.weight_clip)
  return mask, weight


def _weight_model_step(spec: SimSpec, state: WorldState, x, z, rec_ok, n, key):
  """Updates G on (x, Z) of the step's items; returns (g_params, g_opt, [3] metrics before)."""
  g_model = spec.weight_model
  raw = g_model.apply(state.g_params[0], x)
  zf = z.astype(jnp.float32)
  before = jnp.stack([metrics.masked_mean(g_model.loss(raw, zf), rec_ok),
                      metrics.auc(raw, zf, rec_ok),
                      metrics.masked_mean((raw > 0) == z, rec_ok)])
  g_params, g_opt, _ = train_update((g_model,), state.g_params, state.g_opt, x, zf[:, None],
                                    rec_ok.astype(jnp.float32), n, key, spec.updates_per_step)
  return g_params, g_opt, before


def step(spec: SimSpec, env: Env, rep: RepData, alpha, state: WorldState, t):
  """One simulation step of one world.

  Args:
    alpha: [A, L] ranking weights of the world's arms (global: the world's alphas).
    t: the step index (0-based).

  Returns:
    (new WorldState, StepOut).
  """
  design = spec.design
  users = sample_users(spec, rep, t)
  cand_key, dropout_key, assign_key = step_keys(rep, t)
  page, col, video, valid, n_eligible = candidates(spec, env, rep, state.used, users, cand_key)
  if design.arms == 1:
    z = jnp.ones(users.shape, bool)
    arm = jnp.zeros(users.shape, jnp.int32)
  else:
    z = assign(design, rep, users, assign_key)
    arm = jnp.where(z, 0, 1)
  x = pair_features(spec.static, env, rep, users, video)
  scores = jnp.stack([jnp.einsum("l,lbk->bk", alpha[a], predictions(spec.models, p, x))
                      for a, p in enumerate(state.params)])
  rows = jnp.arange(users.shape[0])
  score = scores[arm, rows]
  choice = jnp.argmax(jnp.where(valid, score, -jnp.inf), axis=1)
  rec_ok = valid[:, 0]
  rec_page, rec_col = page[rows, choice], col[rows, choice]
  y = env.page_labels[rec_page, rec_col]
  x_rec = x[rows, choice]
  n_recs = jnp.sum(rec_ok)

  g_params, g_opt = state.g_params, state.g_opt
  g_metrics = jnp.full((3,), jnp.nan)
  g = None
  if design.uses_weight_model:
    g_params, g_opt, g_metrics = _weight_model_step(spec, state, x_rec, z, rec_ok, n_recs,
                                                    jax.random.fold_in(dropout_key, design.arms))
    weighting_g = g_params if design.g_first else state.g_params  # G before or after update.
    g = jax.nn.sigmoid(spec.weight_model.apply(weighting_g[0], x_rec))
  mask, weight = design_weights(design, z.astype(jnp.float32), rec_ok, g)
  params, opt_state, losses = [], [], []
  for a in range(design.arms):
    if design.train_models:
      p, o, loss = train_update(spec.models, state.params[a], state.opt_state[a], x_rec, y,
                                mask[a] * weight[a], jnp.sum(mask[a]),
                                jax.random.fold_in(dropout_key, a), spec.updates_per_step)
    else:
      p, o = state.params[a], state.opt_state[a]
      loss = jnp.stack([models_lib.weighted_loss(m, pl, x_rec, y[:, l], mask[a] * weight[a],
                                                 jnp.sum(mask[a]))
                        for l, (m, pl) in enumerate(zip(spec.models, p))])
    params.append(p)
    opt_state.append(o)
    losses.append(loss)

  n_pages = state.used.shape[0]
  used = state.used.at[jnp.where(rec_ok, rec_page, n_pages), rec_col].set(True, mode="drop")
  arm_of = arm[None, :] == jnp.arange(design.arms)[:, None]  # [A, b]
  in_arm = arm_of & rec_ok[None, :]
  yw = jnp.where(in_arm[..., None], y[None], 0.0)
  out = StepOut(jnp.sum(yw, axis=1), jnp.sum(yw * yw, axis=1), jnp.sum(in_arm, axis=1),
                jnp.sum(arm_of & (n_eligible == 0), axis=1),
                jnp.sum(arm_of & (n_eligible < spec.n_candidate), axis=1),
                jnp.stack(losses), g_metrics)
  return WorldState(tuple(params), tuple(opt_state), g_params, g_opt, used), out


def evaluate(spec: SimSpec, env: Env, rep: RepData, params, rows: EvalRows) -> dict:
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
