"""Training label models on a set of rows: each model class's own update, or the weighted
loss alone (frozen models)."""

import jax
import jax.numpy as jnp


def weighted_loss(model, params, pairs, y, weight, n):
  """(1/n) * sum_i w_i * loss_i over rows i (w_i = 0 for rows that are not items), without
  dropout.

  Args:
    model, params: the LabelModel and its parameters.
    pairs, y: rows of pairs (models.Pairs) and their [n_rows] labels.
    weight: [n_rows] per-item weights (the design's; 0 masks a row out).
    n: the number of the step's recommended items (the 1/n of the loss).
  """
  out = model.apply(params, pairs)
  return jnp.sum(weight * model.loss(out, y)) / jnp.maximum(n, 1)


def train_update(models, params, opt_state, pairs, y, weight, n, key, n_updates: int):
  """`n_updates` learning updates of each model on one set of rows (LabelModel.update: the
  model class decides how it learns).

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
    first = None
    for u in range(n_updates):
      p, o, loss = model.update(p, o, pairs, y[:, l], weight, n,
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
