"""ID tables of the embedding model classes: exact or hashed rows, and their sparse update.

A table has one row per user (or video) when the ids fit `id_budget`, else `id_buckets` rows
indexed by a keyed 32-bit hash of the id (`row_of`); `collision_rate` says how many ids share
a row. Every row starts at zero: an id never seen in pretraining (a validation user, a test
video, a video released during the experiment) scores by its features alone until the
experiment's own traffic trains its row; a hashed id shares its row with the ids it collides
with.

The update is row-wise AdaGrad (one accumulator per row, Gupta et al.'s sparse form): a step
gathers the rows its pairs touch, sums each distinct row's gradient, and scatters the new rows
back, so it costs O(rows touched x dim) whatever the table's size; a row no pair touches is
never read or written. `dense_rowwise_adagrad` is the same update on the whole table (tests).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np



def _mix32(x, xp):
  """prng.mix32 (lowbias32) in numpy or jax.numpy on uint32 arrays."""
  x = (x ^ (x >> 16)) * xp.uint32(0x7FEB352D)
  x = (x ^ (x >> 15)) * xp.uint32(0x846CA68B)
  return x ^ (x >> 16)


@dataclasses.dataclass(frozen=True)
class IdTable:
  """How the ids of one entity map to the rows of a table."""
  n_ids: int  # Users (or videos) in the dataset.
  rows: int  # Rows of the table: n_ids when exact, else the number of buckets.
  hashed: bool
  salt: int = 0  # Distinguishes the hash of the user table from the video table's.

  @classmethod
  def of(cls, n_ids: int, budget: int, buckets: int, salt: int) -> "IdTable":
    if n_ids <= budget:
      return cls(n_ids, max(n_ids, 1), False, salt)
    return cls(n_ids, buckets, True, salt)

  def row_of(self, ids, xp=jnp):
    """Rows of int32 ids (any shape)."""
    if not self.hashed:
      return ids
    h = _mix32(_mix32(ids.astype(xp.uint32) ^ xp.uint32(self.salt), xp), xp)
    return (h % xp.uint32(self.rows)).astype(xp.int32)

  def collision_rate(self) -> float:
    """Share of the ids whose row holds at least one other id (0 when exact)."""
    if not self.hashed or self.n_ids == 0:
      return 0.0
    rows = self.row_of(np.arange(self.n_ids, dtype=np.int32), np)
    counts = np.bincount(rows, minlength=self.rows)
    return float(np.sum(counts[rows] > 1) / self.n_ids)

  def describe(self) -> dict:
    return {"ids": self.n_ids, "rows": self.rows, "hashed": self.hashed,
            "collision_rate": self.collision_rate()}


def cross_rows(user_cat, video_cat, buckets: int, salt: int, xp=jnp):
  """Hashed rows [..., Cu * Cv] of every (user categorical, video categorical) column pair's
  value cross (Wide & Deep's cross-product terms); user_cat [..., Cu], video_cat [..., Cv]
  raw codes of one leading shape."""
  cu, cv = user_cat.shape[-1], video_cat.shape[-1]
  column = xp.arange(cu * cv, dtype=xp.uint32).reshape(cu, cv)
  u = user_cat.astype(xp.uint32)[..., :, None]
  v = video_cat.astype(xp.uint32)[..., None, :]
  h = _mix32(_mix32(_mix32(column ^ xp.uint32(salt), xp) ^ u, xp) + v, xp)
  return (h % xp.uint32(buckets)).astype(xp.int32).reshape(h.shape[:-2] + (cu * cv,))


@dataclasses.dataclass(frozen=True)
class CrossTable:
  """The hashed rows of Wide & Deep's cross terms (cross_rows)."""
  user_widths: tuple  # Code range of each categorical user column.
  video_widths: tuple
  rows: int
  salt: int

  def values(self):
    """Every possible cross: (user codes [n, Cu], video codes [n, Cv], column pair [n])."""
    out = []
    for j, wu in enumerate(self.user_widths):
      for k, wv in enumerate(self.video_widths):
        u, v = np.meshgrid(np.arange(wu), np.arange(wv), indexing="ij")
        out.append((j, k, u.ravel(), v.ravel()))
    return out

  def collision_rate(self) -> float:
    """Share of the possible (column pair, user value, video value) crosses whose row holds
    another cross."""
    rows = []
    cu, cv = len(self.user_widths), len(self.video_widths)
    for j, k, u, v in self.values():
      ucat = np.zeros((len(u), cu), np.int32)
      vcat = np.zeros((len(v), cv), np.int32)
      ucat[:, j], vcat[:, k] = u, v
      rows.append(cross_rows(ucat, vcat, self.rows, self.salt, np)[:, j * cv + k])
    if not rows:
      return 0.0
    rows = np.concatenate(rows)
    _, inverse, counts = np.unique(rows, return_inverse=True, return_counts=True)
    return float(np.mean(counts[inverse] > 1))

  def describe(self) -> dict:
    n = sum(wu * wv for wu in self.user_widths for wv in self.video_widths)
    return {"ids": int(n), "rows": self.rows, "hashed": True,
            "collision_rate": self.collision_rate()}


def init_accumulators(tables: dict, initial: float) -> dict:
  """Row-wise AdaGrad state: one accumulator per row of every table."""
  return {name: jnp.full(t.shape[:1], initial, jnp.float32) for name, t in tables.items()}


def sparse_rowwise_adagrad(table, acc, rows, grads, learning_rate: float, eps: float):
  """Row-wise AdaGrad on the rows touched: `rows` [...] int32 (repeats allowed) with their
  per-occurrence gradients `grads` [..., dim]. Returns (table, acc)."""
  dim = table.shape[-1]
  rows = rows.reshape(-1)
  grads = grads.reshape(-1, dim)
  n, n_rows = rows.shape[0], table.shape[0]
  unique, inverse = jnp.unique(rows, size=n, fill_value=n_rows, return_inverse=True)
  g = jax.ops.segment_sum(grads, inverse.reshape(-1), num_segments=n)
  a = acc.at[unique].get(mode="fill", fill_value=0.0) + jnp.mean(g * g, axis=-1)
  old = table.at[unique].get(mode="fill", fill_value=0.0)
  new = old - learning_rate * g / (jnp.sqrt(a)[:, None] + eps)
  return (table.at[unique].set(new, mode="drop"), acc.at[unique].set(a, mode="drop"))


def dense_rowwise_adagrad(table, acc, grad, learning_rate: float, eps: float):
  """The same update from the whole table's gradient `grad` (what the sparse one avoids)."""
  a = acc + jnp.mean(grad * grad, axis=-1)
  return table - learning_rate * grad / (jnp.sqrt(a)[:, None] + eps), a
