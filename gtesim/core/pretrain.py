"""Pretraining the production models (SPEC §3) until their validation loss stops improving.

Each label model trains on the repetition's logged train-user x train-video rows in shuffled
minibatches, one epoch per call; after each epoch its loss on the validation rows
(validation users x test videos) decides whether it improved. A model that has not improved by
more than `min_delta` (relative) for `patience` epochs stops; the production model is each
label model at its best epoch, with that epoch's optimizer state.

Every distinct ranker (SimSpec.rankers: one, or the treatment's and the control's) is trained,
ranker-major in the flat [R * L] tuples and arrays below, each with the initial keys,
minibatches, dropout keys and early stopping it would have if it ranked both arms.
"""

import jax
import jax.numpy as jnp
from flax import struct
from jax import lax

from gtesim import prng
from gtesim.core import features
from gtesim.core.evaluation import evaluate_models
from gtesim.core.state import Env, EvalRows, RepData


@struct.dataclass
class Production:
  """Pretraining state of one repetition; `best_*` is the production model. Every field is
  ranker-major over [R * L] (ranker r's label l at r * L + l)."""
  params: tuple  # [R * L] parameters after the last epoch.
  opt_state: tuple  # [R * L]
  best_params: tuple  # [R * L] parameters at each label's best validation loss.
  best_opt_state: tuple
  best_loss: jax.Array  # [R * L] best validation loss so far.
  best_epoch: jax.Array  # [R * L] int32 epoch (1-based) of the best loss; 0 = initial model.
  bad_epochs: jax.Array  # [R * L] int32 epochs since the last improvement.
  stopped: jax.Array  # [R * L] bool: the label's model has reached its plateau.

  def ranker(self, r: int, n_labels: int) -> tuple:
    """(best_params, best_opt_state) of ranker r: the production models it starts from."""
    at = slice(r * n_labels, (r + 1) * n_labels)
    return tuple(self.best_params[at]), tuple(self.best_opt_state[at])


def init(spec, env: Env, rep: RepData, rows: EvalRows) -> Production:
  """Fresh label models of one repetition and their optimizer states.

  A head starts with its kind's output bias over the pretraining rows where the kind has one
  (label_kinds: a numerical head at the median of log1p(y), the logMAE minimizer, so it need
  not first climb from 0 to ~10).
  """
  key = prng.stream(rep.key, "init")
  y = env.logs.page_labels[rows.page, rows.col]
  params = []
  for ranker in spec.rankers:
    for l, m in enumerate(ranker):
      p = m.init(jax.random.fold_in(key, l), spec.static.dims)
      bias = m.kind.head_bias(y[:, l])
      if bias is not None:
        p = m.with_head(p, bias)
      params.append(p)
  params = tuple(params)
  flat = _flat(spec)
  opt = tuple(m.init_optimizer(p) for m, p in zip(flat, params))
  n = len(flat)
  return Production(params, opt, params, opt, jnp.full((n,), jnp.inf), jnp.zeros(n, jnp.int32),
                    jnp.zeros(n, jnp.int32), jnp.zeros(n, bool))


def _flat(spec) -> tuple:
  """Every ranker's LabelModels, ranker-major."""
  return tuple(m for ranker in spec.rankers for m in ranker)


def _select(flags, new, old):
  """Per label: `new[l]` where flags[l], else `old[l]` (tuples of pytrees)."""
  return tuple(jax.tree.map(lambda a, b, f=f: jnp.where(f, a, b), n, o)
               for f, n, o in zip(flags, new, old))


def epoch(spec, batch_size: int, patience: int, min_delta: float, env: Env,
          rep: RepData, rows: EvalRows, prod: Production, index, skip_stopped: bool = True):
  """One pass over the pretraining rows, then the early-stopping bookkeeping.

  Models that have stopped do not change; with `skip_stopped` (repetitions under lax.map) they
  do no work either (under vmap a per-repetition branch computes both sides anyway, and
  shard_map's variance check refuses it). Returns (Production, metrics): metrics hold
  `train_loss` [L] (mean over the epoch's minibatches) and the validation metrics of
  `evaluate_models` (`<label>/loss`, `<label>/auc` or `<label>/rel_error`).
  """
  n = rows.user.shape[0]
  n_batches = n // batch_size
  n_labels = len(spec.rankers[0])
  key = jax.random.fold_in(prng.stream(rep.key, "pretrain"), index)
  order = jax.random.permutation(jax.random.fold_in(key, 0), n)
  batches = order[:n_batches * batch_size].reshape(n_batches, batch_size)

  def body(carry, item):
    i, batch = item
    p, o = carry
    pairs, y = features.logged_rows(spec.static, env, rep, rows.user[batch], rows.page[batch],
                                    rows.col[batch])
    new_p, new_o, losses = [], [], []
    ones = jnp.ones(batch_size)
    for r, ranker in enumerate(spec.rankers):
      for l, m in enumerate(ranker):
        at = r * n_labels + l
        # Everything a branch reads is its operand (closed-over values lose their per-
        # repetition variation under shard_map with vmap); the key is train_update's.
        args = (p[at], o[at], pairs, y[:, l], ones,
                jax.random.fold_in(jax.random.fold_in(key, 1 + i), l))

        def update(a, m=m):
          return m.update(*a[:5], batch_size, a[5])

        def keep(a, at=at):  # A stopped model does no work (its result would be discarded).
          return a[0], a[1], jnp.where(prod.stopped[at], jnp.nan, jnp.nan).astype(jnp.float32)

        pl, ol, loss = (lax.cond(prod.stopped[at], keep, update, args) if skip_stopped
                        else update(args))
        new_p.append(pl)
        new_o.append(ol)
        losses.append(loss)
    return (tuple(new_p), tuple(new_o)), jnp.stack(losses)

  def train(carry):
    return lax.scan(body, carry, (jnp.arange(n_batches), batches))

  def skip(carry):  # Every model of this repetition has stopped: no work (under lax.map).
    # NaN losses computed from per-repetition data, so that under shard_map they vary over
    # repetitions like the other branch's.
    nan = jnp.where(prod.stopped, jnp.nan, jnp.nan)
    return carry, jnp.broadcast_to(nan, (n_batches, len(_flat(spec))))

  (params, opt), losses = lax.cond(jnp.all(prod.stopped), skip, train,
                                   (prod.params, prod.opt_state))
  active = ~prod.stopped
  params = _select(active, params, prod.params)
  opt = _select(active, opt, prod.opt_state)
  val = {}
  for r, (ranker, prefix) in enumerate(zip(spec.rankers, spec.ranker_prefixes)):
    val.update(evaluate_models(spec, env, rep, params[r * n_labels:(r + 1) * n_labels],
                               rep.val_rows, ranker, prefix))
  val_loss = jnp.stack([val[f"{prefix}{m.name}/loss"]
                        for ranker, prefix in zip(spec.rankers, spec.ranker_prefixes)
                        for m in ranker])
  threshold = jnp.where(jnp.isfinite(prod.best_loss),
                        prod.best_loss - min_delta * jnp.abs(prod.best_loss), jnp.inf)
  improved = active & (val_loss < threshold)
  bad = jnp.where(improved, 0, prod.bad_epochs + active.astype(jnp.int32))
  prod = Production(params, opt, _select(improved, params, prod.best_params),
                    _select(improved, opt, prod.best_opt_state),
                    jnp.where(improved, val_loss, prod.best_loss),
                    jnp.where(improved, index + 1, prod.best_epoch), bad,
                    prod.stopped | (bad >= patience))
  train_loss = jnp.where(active, jnp.mean(losses, axis=0), jnp.nan)  # NaN: already stopped.
  return prod, {"train_loss": train_loss, **val}
