"""Gradient training, the helper the gradient-trained model classes call (mlp, two_tower,
wide_deep): the label's optimizer (AdamW with global-norm clipping) on the dense parameters,
and row-wise AdaGrad on the ID-table rows a batch touches (models/ids.py), never a whole table.

A model class that learns otherwise (by counting, say) calls none of this: its `update`
returns its new state from the same arguments.
"""

import jax
import jax.numpy as jnp


def weighted_loss(net, loss_fn, params, pairs, y, weight, n, key=None):
  """(1/n) * sum_i w_i * loss_i over rows i (w_i = 0 for rows that are not items).

  Args:
    net, params: the model class instance and its parameters.
    loss_fn: (outputs, y) -> per-row loss (the label's kind and loss).
    pairs, y: rows of pairs (models.Pairs) and their [n_rows] labels.
    weight: [n_rows] per-item weights (the design's; 0 masks a row out).
    n: the number of the step's recommended items (the 1/n of the loss).
    key: dropout key when training, None for a deterministic pass.
  """
  out = net.apply(params, pairs, train=key is not None, key=key)
  return jnp.sum(weight * loss_fn(out, y)) / jnp.maximum(n, 1)


def dense_update(net, optimizer, loss_fn, params, opt_state, pairs, y, weight, n, key):
  """One optimizer update of a model whose parameters are all dense: (params, opt_state,
  loss before the update)."""
  loss, grads = jax.value_and_grad(
      lambda p: weighted_loss(net, loss_fn, p, pairs, y, weight, n, key))(params)
  updates, opt_state = optimizer.update(grads, opt_state, params)
  return jax.tree.map(jnp.add, params, updates), opt_state, loss


def sparse_update(net, optimizer, loss_fn, params, opt_state, pairs, y, weight, n, key):
  """One update of a model with ID tables ({"dense", "ids"}): the dense parameters by the
  optimizer, the touched table rows by row-wise AdaGrad (net.update_ids); no table is read
  whole. Returns (params, opt_state, loss before the update)."""
  rows = net.id_rows(pairs)
  gathered = {name: params["ids"][name][r] for name, r in rows.items()}

  def loss_of(dense, g):
    out = net.apply_rows(dense, g, pairs, train=key is not None, key=key)
    return jnp.sum(weight * loss_fn(out, y)) / jnp.maximum(n, 1)

  loss, (g_dense, g_rows) = jax.value_and_grad(loss_of, argnums=(0, 1))(params["dense"],
                                                                        gathered)
  updates, o_dense = optimizer.update(g_dense, opt_state["dense"], params["dense"])
  tables, acc = net.update_ids(params["ids"], opt_state["ids"], rows, g_rows)
  return ({"dense": jax.tree.map(jnp.add, params["dense"], updates), "ids": tables},
          {"dense": o_dense, "ids": acc}, loss)
