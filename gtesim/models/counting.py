"""Collaborative-filtering scores from a binary user x item consumption matrix (Brennan, Holtz
et al., WWW 2025), as pure jit-able functions: the scoring core of the counting rankers.

- Item-based: score(u, i) = sum_j cos(i, j) x_uj, the cosine between item columns of X (a zero
  column has similarity 0), self-similarity included.
- User-based: score(u, i) = sum_v W_uv x_vi with W = X X^T and W_uu = 0.

Neither forms an I x I (or, per user, a U x U) matrix: item-CF is
score(u, .) = (X^T (X (x_u / n))) / n with n the column norms, user-CF is
score(u, .) = (X x_u - |x_u|^2 e_u)^T X, so a batch of b users costs O(b U I) time and O(U I)
memory. `ranking` orders a user's items by score, ties (and -inf) broken by a noise, higher
first, as the page defines.
"""

import jax
import jax.numpy as jnp


def _safe_inverse(n):
  return jnp.where(n > 0, 1.0 / jnp.where(n > 0, n, 1.0), 0.0)


def item_cf(x, users, items):
  """[b, k] item-CF scores of users [b] for items [b, k] from X [U, I] (0/1 float32)."""
  inv = _safe_inverse(jnp.sqrt(jnp.sum(x * x, axis=0)))  # [I] 1 / column norm.
  s = x @ (x[users] * inv).T  # [U, b]: s[v, u] = sum_j x_vj x_uj / n_j.
  cols = x[:, items]  # [U, b, k]
  return jnp.einsum("vbk,vb->bk", cols, s) * inv[items]


def user_cf(x, users, items):
  """[b, k] user-CF scores of users [b] for items [b, k] from X [U, I]."""
  w = x @ x[users].T  # [U, b]: W[v, u], the diagonal still in.
  w = w.at[users, jnp.arange(users.shape[0])].set(0.0)
  return jnp.einsum("vbk,vb->bk", x[:, items], w)


def ranking(score, noise):
  """[..., k] the order of the items by score, higher first; ties by noise, higher first."""
  return jnp.lexsort((-noise, -score), axis=-1)


def top_ranking(score, noise, k: int):
  """[..., k] the first k items of `ranking(score, noise)` without sorting every item: the k
  highest scores (lax.top_k), and where the k-th score is tied, the tied items by noise. Equal
  to ranking(score, noise)[..., :k] (tested), in O(n log k) instead of O(n log n)."""
  kth = jax.lax.top_k(score, k)[0][..., -1:]  # [..., 1] the k-th highest score.
  # Fewer than k items score above it: all are kept (key inf); the rest of the k are the
  # items tied at it with the highest noise; every other item has key -inf.
  key = jnp.where(score > kth, jnp.inf, jnp.where(score == kth, noise, -jnp.inf))
  _, picked = jax.lax.top_k(key, k)
  s = jnp.take_along_axis(score, picked, -1)
  z = jnp.take_along_axis(noise, picked, -1)
  return jnp.take_along_axis(picked, jnp.lexsort((-z, -s), axis=-1), -1)
