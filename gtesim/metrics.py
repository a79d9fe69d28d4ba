"""Evaluation metrics in JAX (masked, fixed shapes, usable inside compiled code)."""

import jax.numpy as jnp


def auc(score, label, mask):
  """ROC AUC over rows with `mask`, ties counted one half; NaN without both classes."""
  s = jnp.where(mask, score, jnp.inf)
  ordered = jnp.sort(s)
  rank = (jnp.searchsorted(ordered, s, side="left") +
          jnp.searchsorted(ordered, s, side="right") + 1) / 2
  pos = mask & (label > 0.5)
  neg = mask & (label <= 0.5)
  n_pos, n_neg = jnp.sum(pos), jnp.sum(neg)
  u = jnp.sum(jnp.where(pos, rank, 0.0)) - n_pos * (n_pos + 1) / 2
  return u / (n_pos * n_neg)


def masked_mean(values, mask):
  return jnp.sum(jnp.where(mask, values, 0.0)) / jnp.sum(mask)


def relative_error(pred, y, mask):
  """sum |pred - y| / sum y over rows with y > 0 (play time's error on non-zero play)."""
  keep = mask & (y > 0)
  return jnp.sum(jnp.where(keep, jnp.abs(pred - y), 0.0)) / jnp.sum(jnp.where(keep, y, 0.0))
