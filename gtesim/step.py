"""The simulation step (SPEC §4) and evaluation, as pure functions of one repetition's world.

One step in one world, in five phases (`step` composes them; bench.py profiles them):
sampling (`draw`: train users, their arms, candidates among each user's eligible items, see
environments.py and slot_sampler.py), features, scoring (`choose`: each user's candidates
ranked by its own arm's models and alphas, the argmax recommended), bookkeeping (`record`,
`tally`: the outcome, logged or drawn from the latent model; the items marked used; the
per-arm and per-user sums) and training (`learn`: the label models on the recommended items
with the design's masks and weights). Keys depend on (repetition, step) only, never on the
world, so the worlds of a repetition (GT and GC, the points of a sweep) share user batches and
candidate and outcome random numbers.
"""

import dataclasses
import math
from typing import NamedTuple

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
from gtesim import slot_sampler
from gtesim.data.packing import window_index
from gtesim.device_data import Env, EvalRows, RepData, Static, pair_features, split_features


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
  tree: jax.Array | None = None  # Uniform replay/matrix: [K, P] int32 Fenwick trees of each
  # page's eligible unused slots (slot_sampler); else None.


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
  arm_blocks: int = 8  # A/B designs: blocks of the batch in per-arm scoring (blocked_scores).

  @property
  def steps_per_epoch(self) -> int:
    return self.n_train // self.batch_size

  @property
  def uses_tree(self) -> bool:
    """Uniform candidates in packed environments come from slot_sampler's Fenwick trees; the
    popularity-weighted ones from a scan of the user's window (`candidates`)."""
    return self.environment != "latent" and self.retrieval == "uniform"

  @property
  def tree_classes(self) -> int:
    return 2 if self.design.name == "codiverted" else 1

  @property
  def tree_levels(self) -> int:
    """Iterations of a Fenwick descent or update (the longest user's pages)."""
    return slot_sampler.levels(self.static.window_pages)

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


def window_candidates(spec: SimSpec, env: Env, rep: RepData, used, users, key,
                      allowed=None):
  """Popularity retrieval in packed environments: up to n_candidate slots per user among the
  eligible ones (train video, unused), weighted without replacement by the videos' retrieval
  weights (environments.py), by a scan of the user's whole window: O(batch x window). Uniform
  draws come from slot_sampler instead.

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
  weight = env.video_weight[jnp.maximum(video, 0)].reshape(b, -1)
  noise = jnp.log(slot_noise(key, eligible.shape) + jnp.float32(2.0 ** -25)) / weight
  top, idx = lax.top_k(jnp.where(eligible, noise, -jnp.inf), spec.n_candidate)
  rows = jnp.arange(b)[:, None]
  page = pages[rows, idx // static.page_slots]
  col = idx % static.page_slots
  return page, col, video.reshape(b, -1)[rows, idx], top > -jnp.inf, jnp.sum(eligible, axis=1)


def predictions(models, params, xu, xv):
  """[L, b, k] predictions of every label model on users xu [b, du] with candidates
  xv [b, k, dv] (LabelModel.apply_pairs)."""
  return jnp.stack([m.predict(m.apply_pairs(p, xu, xv)) for m, p in zip(models, params)])


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


class Draw(NamedTuple):
  """A step's users, their arms and their candidates (the sampling phase)."""
  users: jax.Array  # [b] user indices.
  position: jax.Array  # [b] their positions among the train users.
  z: jax.Array  # [b] bool: treated.
  arm: jax.Array  # [b] int32 arm index.
  page: jax.Array | None  # [b, k] replay/matrix: the candidates' slots (else None).
  col: jax.Array | None
  video: jax.Array  # [b, k] int32 candidate videos.
  valid: jax.Array  # [b, k] bool: a real candidate.
  n_eligible: jax.Array  # [b] eligible items (latent: distinct eligible draws).


class Scored(NamedTuple):
  """The recommendation of each user (the features and scoring phases)."""
  choice: jax.Array  # [b] index of the recommended candidate.
  x_rec: jax.Array  # [b, d] its features.


def _codiverted_filter(spec: SimSpec, rep: RepData, point: designs.Point, z):
  """videos [b, ...] -> bool: the videos of each user's own arm (co-diverted), else None."""
  if spec.design.name != "codiverted":
    return None

  def allowed(videos):
    treated = designs.video_treated(spec.design, rep.video_u, videos, point.p_treatment)
    return treated == z.reshape(z.shape + (1,) * (videos.ndim - 1))
  return allowed


def tree_class(spec: SimSpec, arm):
  """Which Fenwick tree each user draws from (slot_sampler): its arm under co-diverted."""
  return arm if spec.design.name == "codiverted" else jnp.zeros_like(arm)


def eligible_counts(spec: SimSpec, env: Env, rep: RepData, point: designs.Point):
  """[K, P] eligible slots of each environment page per tree class, before any
  recommendation: filled slots holding a train video (co-diverted: class 0 = the treatment
  arm's videos, 1 = control's, matching tree_class and _codiverted_filter)."""
  video = env.page_video[:spec.static.n_pages]
  ok = (video >= 0) & rep.train_video[jnp.maximum(video, 0)]
  if spec.tree_classes == 1:
    return jnp.sum(ok, axis=1, dtype=jnp.int32)[None]
  treated = designs.video_treated(spec.design, rep.video_u, jnp.maximum(video, 0),
                                  point.p_treatment)
  return jnp.stack([jnp.sum(ok & treated, axis=1, dtype=jnp.int32),
                    jnp.sum(ok & ~treated, axis=1, dtype=jnp.int32)])


def draw(spec: SimSpec, env: Env, rep: RepData, point: designs.Point, world: World, t) -> Draw:
  """Sampling: the step's users, their assignment and their candidates."""
  design = spec.design
  users, position = sample_users(spec, rep, t)
  cand_key, _, assign_key, _ = step_keys(rep, t)
  cluster = rep.user_cluster[users] if design.name == "cluster" else None
  z = designs.assign(design, rep.key, users, assign_key, point.p_treatment, t, cluster)
  arm = designs.arm_of(z) if design.arms == 2 else jnp.zeros(users.shape, jnp.int32)
  allowed = _codiverted_filter(spec, rep, point, z)
  page = col = None
  if spec.environment == "latent":
    video, valid, n_eligible = environments.catalogue_candidates(
        spec.n_candidate, spec.candidate_draws, env.block_cdf, env.within_cdf, rep.train_video,
        world.used[position], slot_noise(cand_key, (users.shape[0], spec.candidate_draws, 2)),
        allowed)
  elif spec.uses_tree:
    page, col, video, valid, n_eligible = slot_sampler.candidates(
        world.tree, world.used, env.page_video, rep.train_video, env.first_page, env.n_pages,
        users, tree_class(spec, arm), cand_key, spec.n_candidate,
        spec.tree_levels, allowed)
  else:
    page, col, video, valid, n_eligible = window_candidates(spec, env, rep, world.used,
                                                            users, cand_key, allowed)
  return Draw(users, position, z, arm, page, col, video, valid, n_eligible)


def arm_order(spec: SimSpec, d: Draw):
  """A/B designs: the batch order that groups the users by arm (treatment first); else None."""
  return jnp.argsort(d.arm, stable=True) if spec.design.arms == 2 else None


def features(spec: SimSpec, env: Env, rep: RepData, d: Draw, order):
  """(user features [b, du], candidate video features [b, k, dv]), users in `order`
  (arm_order) when given."""
  users, video = (d.users, d.video) if order is None else (d.users[order], d.video[order])
  return split_features(spec.static, env, rep, users, video)


def blocked_scores(models, params, alpha, xu, xv, arm, n_blocks: int):
  """Ranking scores [b, k] of users sorted by arm, each scored only by its own arm's models.

  The b users are cut into n_blocks blocks of c users; a block is scored with the arm of its
  first user, and the one block where the arms meet is scored again with arm 1 (its arm-1
  users take those scores): (n_blocks + 1) c users' model work instead of 2 b.

  Args:
    params: [arm][label] model parameters; alpha [A, L]; xu [b, du], xv [b, k, dv] the
      features (features()); arm [b] sorted.
  """
  b, k = xv.shape[:2]
  c = -(-b // n_blocks)
  pad = n_blocks * c - b  # Padding users (arm 1, so the order stays sorted) fill the last block.
  xu = jnp.pad(xu, ((0, pad), (0, 0)))
  xv = jnp.pad(xv, ((0, pad), (0, 0), (0, 0)))
  arm = jnp.pad(arm, (0, pad), constant_values=designs.CONTROL)
  meet = jnp.minimum(jnp.sum(arm == designs.TREATMENT) // c, n_blocks - 1)

  def blocks(a):  # [n_blocks + 1, c, ...]: the blocks, then the block where the arms meet.
    a = a.reshape((n_blocks, c) + a.shape[1:])
    return jnp.concatenate([a, lax.dynamic_slice_in_dim(a, meet, 1)])

  block_arm = jnp.concatenate([arm[::c], jnp.full((1,), designs.CONTROL, arm.dtype)])
  stacked = jax.tree.map(lambda *p: jnp.stack(p)[block_arm], *params)
  preds = jax.vmap(lambda p, u, v: predictions(models, p, u, v))(stacked, blocks(xu),
                                                                 blocks(xv))  # [n+1, L, c, k]
  scores = jnp.einsum("nl,nlck->nck", alpha[block_arm], preds)
  rows = jnp.arange(n_blocks * c)
  again = (rows // c == meet) & (arm == designs.CONTROL)
  redo = scores[-1][jnp.clip(rows - meet * c, 0, c - 1)]
  return jnp.where(again[:, None], redo, scores[:-1].reshape(-1, k))[:b]


def choose(spec: SimSpec, point: designs.Point, world: World, d: Draw, feats,
           order) -> Scored:
  """Scoring: every user's candidates ranked by its arm's models; the argmax is recommended."""
  xu, xv = feats
  rows = jnp.arange(d.users.shape[0])
  if order is None:
    scores = jnp.einsum("l,lbk->bk", point.alpha[0],
                        predictions(spec.models, world.params[0], xu, xv))
    at = rows
  else:
    sorted_scores = blocked_scores(spec.models, world.params, point.alpha, xu, xv,
                                   d.arm[order], spec.arm_blocks)
    at = jnp.zeros_like(order).at[order].set(rows)  # Each user's row in the sorted order.
    scores = sorted_scores[at]
  choice = jnp.argmax(jnp.where(d.valid, scores, -jnp.inf), axis=1)
  return Scored(choice, jnp.concatenate([xu[at], xv[at, choice]], axis=-1))


def record(spec: SimSpec, env: Env, rep: RepData, world: World, d: Draw, s: Scored, t):
  """Bookkeeping: the recommendations' outcomes [b, L], and the world's memory of what each
  user was recommended (used mask, Fenwick trees).

  Returns (outcomes, rec_ok [b], used, tree).
  """
  rows = jnp.arange(d.users.shape[0])
  rec_ok = d.valid[:, 0]
  tree = world.tree
  if spec.environment == "latent":
    rec_video = d.video[rows, s.choice]
    y = environments.latent_outcomes(env.latent, spec.latent_columns, spec.expected, d.users,
                                     rec_video, step_keys(rep, t)[3])
    used = world.used.at[d.position, t // spec.steps_per_epoch].set(
        jnp.where(rec_ok, rec_video, -1))
    return y, rec_ok, used, tree
  rec_page, rec_col = d.page[rows, s.choice], d.col[rows, s.choice]
  y = env.page_labels[rec_page, rec_col]
  used = world.used.at[jnp.where(rec_ok, rec_page, world.used.shape[0]), rec_col].set(
      True, mode="drop")
  if spec.uses_tree:
    base = env.first_page[d.users]
    tree = slot_sampler.decrement(tree, tree_class(spec, d.arm), base, env.n_pages[d.users],
                                  rec_page - base, rec_ok,
                                  spec.tree_levels)
  return y, rec_ok, used, tree


def learn(spec: SimSpec, rep: RepData, point: designs.Point, world: World, d: Draw,
          s: Scored, y, rec_ok, t):
  """Training: the weight model (weighting) and every arm's label models on the step's items
  with the design's masks and weights.

  Returns (params, opt_state, g_params, g_opt, losses [A, L], weight-model metrics [3]).
  """
  design = spec.design
  dropout_key = step_keys(rep, t)[1]
  n_recs = jnp.sum(rec_ok)
  g_params, g_opt = world.g_params, world.g_opt
  g_metrics = jnp.full((3,), jnp.nan)
  g = None
  if design.uses_weight_model:
    x_g = designs.weight_model_input(design, s.x_rec, spec.static.user_layout.width)
    g_params, g_opt, g_metrics = _weight_model_step(spec, world, x_g, d.z, rec_ok, n_recs,
                                                    jax.random.fold_in(dropout_key, design.arms))
    weighting_g = g_params if design.g_first else world.g_params  # G after or before update.
    g = jax.nn.sigmoid(spec.weight_model.apply(weighting_g[0], x_g))
  mask, weight = designs.training_weights(design, d.z, rec_ok, point.p_treatment, g)
  params, opt_state, losses = [], [], []
  for a in range(design.arms):
    if design.train_models:
      p, o, loss = train_update(spec.models, world.params[a], world.opt_state[a], s.x_rec, y,
                                mask[a] * weight[a], jnp.sum(mask[a]),
                                jax.random.fold_in(dropout_key, a), spec.updates_per_step)
    else:
      p, o = world.params[a], world.opt_state[a]
      loss = jnp.stack([models_lib.weighted_loss(m, pl, s.x_rec, y[:, l], mask[a] * weight[a],
                                                 jnp.sum(mask[a]))
                        for l, (m, pl) in enumerate(zip(spec.models, p))])
    params.append(p)
    opt_state.append(o)
    losses.append(loss)
  return tuple(params), tuple(opt_state), g_params, g_opt, jnp.stack(losses), g_metrics


def tally(spec: SimSpec, world: World, d: Draw, y, rec_ok, t):
  """Bookkeeping: the per-user sums (A/B designs) and the step's sums per arm.

  Returns (user_sum, user_n, the StepOut fields but loss and weight_model).
  """
  design = spec.design
  arm_of = d.arm[None, :] == jnp.arange(design.arms)[:, None]  # [A, b]
  in_arm = arm_of & rec_ok[None, :] & designs.counted(design, t)  # Enters the estimate.
  yw = jnp.where(in_arm[..., None], y[None], 0.0)  # [A, b, L]
  user_sum, user_n = world.user_sum, world.user_n
  if spec.tracks_users:
    user_sum = user_sum.at[d.position].add(jnp.moveaxis(yw, 1, 0))
    user_n = user_n.at[d.position].add(in_arm.T.astype(jnp.float32))
  return user_sum, user_n, (jnp.sum(yw, axis=1), jnp.sum(yw * yw, axis=1),
                            jnp.sum(in_arm, axis=1), jnp.sum(arm_of & (d.n_eligible == 0), axis=1),
                            jnp.sum(arm_of & (d.n_eligible < spec.n_candidate), axis=1))


def step(spec: SimSpec, env: Env, rep: RepData, point: designs.Point, world: World, t):
  """One simulation step of one world; returns (new World, StepOut)."""
  d = draw(spec, env, rep, point, world, t)
  order = arm_order(spec, d)
  s = choose(spec, point, world, d, features(spec, env, rep, d, order), order)
  y, rec_ok, used, tree = record(spec, env, rep, world, d, s, t)
  user_sum, user_n, sums = tally(spec, world, d, y, rec_ok, t)
  params, opt_state, g_params, g_opt, losses, g_metrics = learn(spec, rep, point, world, d, s,
                                                                 y, rec_ok, t)
  return (World(params, opt_state, g_params, g_opt, used, user_sum, user_n, tree),
          StepOut(*sums, losses, g_metrics))


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
