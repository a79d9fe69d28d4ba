"""Collaborative-filtering scores from a binary user x item consumption matrix (Brennan, Holtz
et al., WWW 2025), as pure jit-able functions: the scoring core of the counting rankers.

- Item-based: score(u, i) = sum_j cos(i, j) x_uj, the cosine between item columns of X (a zero
  column has similarity 0), self-similarity included.
- User-based: score(u, i) = sum_v W_uv x_vi with W = X X^T and W_uu = 0.

Neither forms an I x I (or, per user, a U x U) matrix: item-CF is
score(u, .) = (X^T (X (x_u / n))) / n with n the column norms, user-CF is
score(u, .) = (X x_u - |x_u|^2 e_u)^T X, so a batch of b users costs O(b U I) time and O(U I)
memory. `ranking` orders a user's items by score, ties (and -inf) broken by a noise, higher
first, as the page defines. The four rankers of the page (`RANKERS`: item_cf, user_cf, random,
oracle) are the choice world's model classes: their state is the consumption matrix.
"""

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from gtesim.registry import Registry


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
  # [..., 1] the k-th highest score: the min of the k highest (slicing top_k's output instead
  # made XLA CPU's top_k 15x slower).
  kth = jnp.min(jax.lax.top_k(score, k)[0], -1, keepdims=True)
  # Fewer than k items score above it: all are kept (key inf); the rest of the k are the
  # items tied at it with the highest noise (float32: XLA CPU's fast top_k); every other item
  # has key -inf.
  key = jnp.where(score > kth, jnp.inf, jnp.where(score == kth, noise, -jnp.inf))
  _, picked = jax.lax.top_k(key, k)
  return ordered(picked, jnp.take_along_axis(score, picked, -1),
                 jnp.take_along_axis(noise, picked, -1))


def ordered(items, score, noise):
  """[..., k] `items` in ranking order (score, then noise, higher first; then the lower id),
  by counting each item's predecessors: O(k^2) compares, cheaper than XLA CPU's sort at
  small k."""
  s_i, s_j = score[..., :, None], score[..., None, :]
  z_i, z_j = noise[..., :, None], noise[..., None, :]
  before = (s_j > s_i) | ((s_j == s_i) & ((z_j > z_i) | ((z_j == z_i) &
                                                        (items[..., None, :] < items[..., :, None]))))
  rank = jnp.sum(before, -1)  # [..., k] a permutation of 0..k-1 (a strict total order).
  slot = rank[..., :, None] == jnp.arange(items.shape[-1])  # [..., item, slot]
  return jnp.sum(jnp.where(slot, items[..., :, None], 0), -2)


def item_cf_factors(x):
  """(L [U, U], scale [I]) with item-CF's scores of every user (L @ X) * scale: L = (X D) X^T,
  scale = D, the inverse column norms (never an I x I matrix)."""
  inv = _safe_inverse(jnp.sqrt(jnp.sum(x * x, axis=0)))
  return (x * inv) @ x.T, inv


def user_cf_factors(x, gram=None):
  """(L, scale) with user-CF's scores (L @ X) * scale: L = X X^T (`gram` where given) with a
  zero diagonal, scale 1."""
  w = x @ x.T if gram is None else gram
  return w - jnp.diag(jnp.diag(w)), jnp.ones(x.shape[1], x.dtype)


def update_gram(gram, x, item):
  """X' X'^T from X X^T [U, U] (`gram`, exact small integers in float32) and the X [U, I]
  before user u consumed item[u] (-1: nothing): with E the new ones (one per row at most),
  X' X'^T = X X^T + E X^T + X E^T + E E^T, in O(U^2) instead of a [U, I] x [I, U] product."""
  rows = jnp.arange(x.shape[0])
  at = jnp.maximum(item, 0)
  new = ((item >= 0) & (x[rows, at] == 0)).astype(x.dtype)  # [U] a 0 that becomes 1.
  c = x[:, at] * new[None, :]  # [U, U]: c[v, u] = x_vi(u) for a new (u, i(u)).
  same = (at[:, None] == at[None, :]).astype(x.dtype) * new[:, None] * new[None, :]
  return gram + c + c.T + same


def item_cf_all(x):
  """[U, I] item-CF scores of every user from X [U, I]."""
  left, scale = item_cf_factors(x)
  return (left @ x) * scale


def user_cf_all(x):
  """[U, I] user-CF scores of every user."""
  left, scale = user_cf_factors(x)
  return (left @ x) * scale


# --- the counting rankers (the choice world's model classes) ---------------------------------


@dataclasses.dataclass(frozen=True)
class CountingRanker:
  """A ranker whose whole state is the binary consumption matrix it trains on (no gradients):
  `scores(x, utility)` ranks every user's items from X [U, I]; learning is X[u, i] = 1 for a
  consumed (u, i), which the environment writes. Higher scores first, ties by the period's
  noise (environments/choice.py)."""
  name: str
  reads_utility: ClassVar[bool] = False  # Only the oracle reads the environment's utilities:
  # `scores` gets them (its declared interface), every other ranker gets None.
  learns: ClassVar[bool] = True  # Its list depends on X (random's does not).
  uses_gram: ClassVar[bool] = False  # Its scores read X X^T, which the environment then keeps
  # up to date as consumption adds to X (update_gram) and passes to `factors`.

  def scores(self, x, utility=None, gram=None):
    """[U, I] float32 scores; -inf below every item of a real score. `gram`: X X^T where
    the ranker uses_gram and the environment keeps it (None: computed)."""
    raise NotImplementedError


def _pushed_down(x, score):
  """Consumed items (x = 1) at -inf: below every unconsumed item, ordered by the noise."""
  return jnp.where(x > 0, -jnp.inf, score)


@dataclasses.dataclass(frozen=True)
class FactoredCF(CountingRanker):
  """A CF ranker whose raw scores are (L @ X) * scale: `factors(x)` gives L [U, U] and the
  column scale [I], so rankers of two arms can share the [U, U] x [U, I] product (each user's
  row of L from its arm's ranker: pooled_scores)."""

  def factors(self, x, gram=None):
    """(L [U, U], scale [I]); `gram`: X X^T where the ranker uses_gram (None: computed)."""
    raise NotImplementedError

  def scores(self, x, utility=None, gram=None):
    left, scale = self.factors(x, gram)
    return _pushed_down(x, (left @ x) * scale)


@dataclasses.dataclass(frozen=True)
class ItemCF(FactoredCF):
  """score(u, i) = sum_j cos(i, j) x_uj; consumed items -inf (item_cf_factors)."""

  def factors(self, x, gram=None):
    return item_cf_factors(x)


@dataclasses.dataclass(frozen=True)
class UserCF(FactoredCF):
  """score(u, i) = sum_{v != u} (x_u . x_v) x_vi; consumed items -inf (user_cf_factors)."""

  uses_gram: ClassVar[bool] = True

  def factors(self, x, gram=None):
    return user_cf_factors(x, gram)


def shared_scores(rankers, xs, x, arm, grams=None):
  """[U, I] each user's scores by its arm's FactoredCF ranker with one [U, U] x [U, I]
  product: row u of L and of the scale are arm[u]'s.

  Args:
    rankers: a FactoredCF per arm; xs: each arm's training matrix, which is `x` or `x` with
      only the arm's users' rows (diverted); arm: [U] each user's arm; grams: each arm's
      xs[a] xs[a]^T (or None), for rankers that use it.
  A user's row of its arm's L is 0 at every user outside the arm's training rows, so
  L_a[u] @ xs[a] = L_a[u] @ x and the product can take `x` for every row.
  """
  left, scale = None, None
  grams = grams or [None] * len(rankers)
  for a, (ranker, xa, ga) in enumerate(zip(rankers, xs, grams)):
    la, sa = ranker.factors(xa, ga)
    in_arm = (arm == a)[:, None]
    left = la if left is None else jnp.where(in_arm, la, left)
    scale = jnp.broadcast_to(sa, x.shape) if scale is None else jnp.where(in_arm, sa, scale)
  return _pushed_down(x, (left @ x) * scale)


@dataclasses.dataclass(frozen=True)
class Random(CountingRanker):
  """Every item scores 0: the order is the noise's alone; consumed items are not pushed
  down."""
  learns: ClassVar[bool] = False

  def scores(self, x, utility=None, gram=None):
    return jnp.zeros_like(x)


@dataclasses.dataclass(frozen=True)
class Oracle(CountingRanker):
  """("ideal") unconsumed items by their true utility, then consumed items by the noise."""
  reads_utility: ClassVar[bool] = True

  def scores(self, x, utility=None, gram=None):
    return _pushed_down(x, utility.astype(jnp.float32))


RANKERS = Registry("counting ranker", "choice.algo1 / choice.algo2")
for _name, _cls in (("item_cf", ItemCF), ("user_cf", UserCF), ("random", Random),
                    ("oracle", Oracle)):
  RANKERS.register(_name, _cls(_name))
