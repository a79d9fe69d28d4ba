"""Training label models on a set of rows: the weighted loss and the optimizer updates."""

import jax
import jax.numpy as jnp


def weighted_loss(model, params, pairs, y, weight, n, key=None):
  """(1/n) * sum_i w_i * loss_i over rows i (w_i = 0 for rows that are not items).

  Args:
    model, params: the LabelModel and its parameters.
    pairs, y: rows of pairs (models.Pairs) and their [n_rows] labels.
    weight: [n_rows] per-item weights (the design's; 0 masks a row out).
    n: the number of the step's recommended items (the 1/n of the loss).
    key: dropout key when training, None for a deterministic pass.
  """
  out = model.apply(params, pairs, train=key is not None, key=key)
  return jnp.sum(weight * model.loss(out, y)) / jnp.maximum(n, 1)


def _dense_update(model, p, o, pairs, y, weight, n, key):
  """One optimizer update of a model without ID tables: (params, opt_state, loss)."""
  loss, grads = jax.value_and_grad(weighted_loss, argnums=1)(model, p, pairs, y, weight, n,
                                                             key)
  updates, o = model.optimizer.update(grads, o, p)
  return jax.tree.map(jnp.add, p, updates), o, loss


def _sparse_update(model, p, o, pairs, y, weight, n, key):
  """One update of a model with ID tables: the dense parameters by the label's optimizer,
  the touched table rows by row-wise AdaGrad (models/ids.py); no table is read whole."""
  net = model.net
  rows = net.id_rows(pairs)
  gathered = {name: p["ids"][name][r] for name, r in rows.items()}

  def loss_fn(dense, g):
    out = net.apply_rows(dense, g, pairs, train=key is not None, key=key)
    return jnp.sum(weight * model.loss(out, y)) / jnp.maximum(n, 1)

  loss, (g_dense, g_rows) = jax.value_and_grad(loss_fn, argnums=(0, 1))(p["dense"], gathered)
  updates, o_dense = model.optimizer.update(g_dense, o["dense"], p["dense"])
  tables, acc = net.update_ids(p["ids"], o["ids"], rows, g_rows)
  return ({"dense": jax.tree.map(jnp.add, p["dense"], updates), "ids": tables},
          {"dense": o_dense, "ids": acc}, loss)


def train_update(models, params, opt_state, pairs, y, weight, n, key, n_updates: int):
  """`n_updates` optimizer updates of each model on one set of rows.

  Args:
    models: LabelModels; params and opt_state per model.
    pairs, y: rows of pairs, [n_rows, len(models)] labels.
    weight: [n_rows] per-item weights (0 masks a row out).
    n: the 1/n of the loss (number of items this update trains on).
    key: dropout key.

  Returns:
    (params, opt_state, [len(models)] loss before the first update).
  """
  new_params, new_opt, losses = [], [], []
  for l, (model, p, o) in enumerate(zip(models, params, opt_state)):
    update = _sparse_update if model.net.has_ids else _dense_update
    first = None
    for u in range(n_updates):
      p, o, loss = update(model, p, o, pairs, y[:, l], weight, n,
                          jax.random.fold_in(key, l * n_updates + u))
      first = loss if first is None else first
    new_params.append(p)
    new_opt.append(o)
    losses.append(first)
  return tuple(new_params), tuple(new_opt), jnp.stack(losses)


def losses_only(models, params, pairs, y, weight, n):
  """[len(models)] weighted losses without an update (frozen models)."""
  return jnp.stack([weighted_loss(m, p, pairs, y[:, l], weight, n)
                    for l, (m, p) in enumerate(zip(models, params))])
