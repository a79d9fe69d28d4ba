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
  params: tuple  # Per label.
  opt_state: tuple  # Per label.
  used: jax.Array  # [P, C] bool: slots recommended in this world.


class StepOut(NamedTuple):
  outcome_sum: jax.Array  # [L] sum of the recommended items' labels.
  n_recs: jax.Array  # Users who got a recommendation.
  n_exhausted: jax.Array  # Sampled users with no eligible candidate.
  n_short: jax.Array  # Sampled users with fewer eligible candidates than n_candidate.
  loss: jax.Array  # [L] training loss on the step's items (before the update).


@dataclasses.dataclass(frozen=True)
class SimSpec:
  """Static description of the compiled simulation."""
  static: Static
  models: tuple  # LabelModel per label.
  batch_size: int
  n_candidate: int
  updates_per_step: int
  n_train: int  # Train users per repetition.

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
  """(candidate key, dropout key) of step t, shared by all worlds of the repetition."""
  key = jax.random.fold_in(jax.random.fold_in(rng.stream(rep.key, "sim"), 1), t)
  return jax.random.fold_in(key, 0), jax.random.fold_in(key, 1)


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
  noise = jax.random.uniform(key, eligible.shape)
  top, idx = lax.top_k(jnp.where(eligible, noise, -1.0), spec.n_candidate)
  rows = jnp.arange(b)[:, None]
  page = pages[rows, idx // static.page_slots]
  col = idx % static.page_slots
  return page, col, video.reshape(b, -1)[rows, idx], top >= 0, jnp.sum(eligible, axis=1)


def predictions(spec: SimSpec, params, x):
  """[L, ...] predictions of every label model on features x."""
  return jnp.stack([m.predict(m.apply(p, x)) for m, p in zip(spec.models, params)])


def train_update(spec: SimSpec, params, opt_state, x, y, weight, n, key, n_updates: int):
  """`n_updates` optimizer updates of every label model on one set of items.

  Args:
    x, y: [n_rows, d] features, [n_rows, L] labels.
    weight: [n_rows] or [L, n_rows] per-item weights (0 masks a row out).
    n: the 1/n of the loss (number of recommended items).
    key: dropout key.

  Returns:
    (params, opt_state, [L] loss before the first update).
  """
  weight = jnp.broadcast_to(weight, (len(spec.models),) + weight.shape[-1:])
  new_params, new_opt, losses = [], [], []
  for l, (model, p, o) in enumerate(zip(spec.models, params, opt_state)):
    grad_fn = jax.value_and_grad(models_lib.weighted_loss, argnums=1)
    first = None
    for u in range(n_updates):
      loss, grads = grad_fn(model, p, x, y[:, l], weight[l], n,
                            jax.random.fold_in(key, l * n_updates + u))
      updates, o = model.optimizer.update(grads, o, p)
      p = jax.tree.map(jnp.add, p, updates)
      first = loss if first is None else first
    new_params.append(p)
    new_opt.append(o)
    losses.append(first)
  return tuple(new_params), tuple(new_opt), jnp.stack(losses)


def step(spec: SimSpec, env: Env, rep: RepData, alpha, state: WorldState, t):
  """One simulation step of one world (global mode: every user in this world's arm).

  Args:
    alpha: [L] the world's ranking weights.
    t: the step index (0-based).

  Returns:
    (new WorldState, StepOut).
  """
  users = sample_users(spec, rep, t)
  cand_key, dropout_key = step_keys(rep, t)
  page, col, video, valid, n_eligible = candidates(spec, env, rep, state.used, users, cand_key)
  x = pair_features(spec.static, env, rep, users, video)
  score = jnp.einsum("l,lbk->bk", alpha, predictions(spec, state.params, x))
  choice = jnp.argmax(jnp.where(valid, score, -jnp.inf), axis=1)
  rows = jnp.arange(users.shape[0])
  rec_ok = valid[:, 0]
  rec_page, rec_col = page[rows, choice], col[rows, choice]
  y = env.page_labels[rec_page, rec_col]
  n_recs = jnp.sum(rec_ok)
  params, opt_state, loss = train_update(spec, state.params, state.opt_state, x[rows, choice],
                                         y, rec_ok.astype(jnp.float32), n_recs, dropout_key,
                                         spec.updates_per_step)
  n_pages = state.used.shape[0]
  used = state.used.at[jnp.where(rec_ok, rec_page, n_pages), rec_col].set(True, mode="drop")
  out = StepOut(jnp.sum(jnp.where(rec_ok[:, None], y, 0.0), axis=0), n_recs,
                jnp.sum(n_eligible == 0), jnp.sum(n_eligible < spec.n_candidate), loss)
  return WorldState(params, opt_state, used), out


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
