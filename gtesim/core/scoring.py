"""Ranking scores of candidates: every label model's prediction weighted by an arm's alphas."""

import jax
import jax.numpy as jnp
from jax import lax

from gtesim.models import Pairs

TREATMENT, CONTROL = 0, 1  # Arm indices of A/B designs (global worlds have one arm, 0).


def predictions(models, params, pairs: Pairs):
  """[L, b, k] predictions of every label model on users with their candidates."""
  return jnp.stack([m.predict(m.score_pairs(p, pairs)) for m, p in zip(models, params)])


def blocked_scores(models, params, alpha, pairs: Pairs, arm, n_blocks: int):
  """Ranking scores [b, k] of users sorted by arm, each scored only by its own arm's models.

  The b users are cut into n_blocks blocks of c users; a block is scored with the arm of its
  first user, and the one block where the arms meet is scored again with arm 1 (its arm-1
  users take those scores): (n_blocks + 1) c users' model work instead of 2 b.

  Args:
    params: [arm][label] model parameters; alpha [A, L]; pairs: the sorted users
      ([b, du], [b]) with their candidates ([b, k, dv], [b, k]); arm [b] sorted.
  """
  b, k = pairs.video_x.shape[:2]
  c = -(-b // n_blocks)
  pad = n_blocks * c - b  # Padding users (arm 1, so the order stays sorted) fill the last block.
  padded = jax.tree.map(lambda x: jnp.pad(x, ((0, pad),) + ((0, 0),) * (x.ndim - 1)), pairs)
  arm = jnp.pad(arm, (0, pad), constant_values=CONTROL)
  meet = jnp.minimum(jnp.sum(arm == TREATMENT) // c, n_blocks - 1)

  def blocks(a):  # [n_blocks + 1, c, ...]: the blocks, then the block where the arms meet.
    a = a.reshape((n_blocks, c) + a.shape[1:])
    return jnp.concatenate([a, lax.dynamic_slice_in_dim(a, meet, 1)])

  block_arm = jnp.concatenate([arm[::c], jnp.full((1,), CONTROL, arm.dtype)])
  dense = [tuple(m.dense_of(p) for m, p in zip(models, arm_params)) for arm_params in params]
  stacked = jax.tree.map(lambda *p: jnp.stack(p)[block_arm], *dense)
  # ID-table rows are gathered from every arm's tables, then each block keeps its arm's: a
  # table is never copied (O(rows touched), not O(table)).
  rows = [jax.tree.map(lambda *g: jnp.stack([blocks(x) for x in g])[
      block_arm, jnp.arange(n_blocks + 1)], *[m.gather(p[l], padded) for p in params])
          for l, m in enumerate(models)]
  preds = jax.vmap(lambda p, g, x: jnp.stack([
      m.predict(m.score_gathered(p[l], g[l], x)) for l, m in enumerate(models)]))(
          stacked, rows, jax.tree.map(blocks, padded))  # [n+1, L, c, k]
  scores = jnp.einsum("nl,nlck->nck", alpha[block_arm], preds)
  rows_at = jnp.arange(n_blocks * c)
  again = (rows_at // c == meet) & (arm == CONTROL)
  redo = scores[-1][jnp.clip(rows_at - meet * c, 0, c - 1)]
  return jnp.where(again[:, None], redo, scores[:-1].reshape(-1, k))[:b]


def two_ranker_scores(arm_models, params, alpha, pairs: Pairs, arm):
  """Ranking scores [b, k] when the arms rank with different models (model classes or sizes):
  every user is scored by both arms' models and keeps its own arm's (2 b users' model work).

  Args:
    arm_models: [arm] tuples of LabelModels; params [arm][label]; alpha [A, L]; arm [b].
  """
  scores = [jnp.einsum("l,lbk->bk", alpha[a], predictions(models, params[a], pairs))
            for a, models in enumerate(arm_models)]
  return jnp.where((arm == TREATMENT)[:, None], scores[TREATMENT], scores[CONTROL])
