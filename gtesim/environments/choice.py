"""The Brennan–Holtz choice world's period, as pure jit-able functions over a batch of users.

A user scans one interleaved list: recommended item 1, new item 1, recommended 2, new 2, ...
while both lists have items, then the longer list's rest; position j (0-based) discounts the
user's utility by (1 + j)^-discount. The user consumes the item of the highest discounted
utility when that value exceeds its reserve utility (strictly), else nothing (the outside
option); equal values go to the earlier position. Items a user may not see (co-diverted:
another arm's) are left out of both lists before interleaving, so the visible ones keep their
order and close up. Only a prefix of the ranked list can win (a later position's discount
caps its value); `prefix_is_exact` says, per user, whether a kept prefix of k items chose
exactly what the whole list would.
"""

import jax.numpy as jnp


def positions(valid):
  """[b, n] int32: each item's rank among the valid items of its list (-1 where invalid)."""
  rank = jnp.cumsum(valid.astype(jnp.int32), axis=-1) - 1
  return jnp.where(valid, rank, -1)


def interleaved_positions(rec_valid, new_valid, n_recs=None):
  """Positions in the scanned list of the recommended [b, R] and new [b, N] items (-1 where
  invalid): with m the shorter list's length, item j of either list is at 2j (recommended) or
  2j + 1 (new) while j < m, then at m + j. `n_recs` [b]: the whole recommendation list's
  visible length when `rec_valid` holds only its first items (a kept prefix); default its
  own count."""
  r, n = positions(rec_valid), positions(new_valid)
  if n_recs is None:
    n_recs = jnp.sum(rec_valid, -1)
  m = jnp.minimum(n_recs, jnp.sum(new_valid, -1))[:, None]
  rec_pos = jnp.where(r < m, 2 * r, m + r)
  new_pos = jnp.where(n < m, 2 * n + 1, m + n)
  return jnp.where(rec_valid, rec_pos, -1), jnp.where(new_valid, new_pos, -1)


def choose(rec_items, rec_valid, new_items, new_valid, utility, reserve, discount: float,
           n_recs=None):
  """The consumed item [b] (-1: nothing), whether it was recommended [b], and its discounted
  value [b] (-inf: nothing visible).

  Args:
    rec_items [b, R], new_items [b, N]: item ids in list order; *_valid: visible.
    utility: [b, I] each user's utilities; reserve: [b]; discount: the position exponent.
    n_recs: [b] the whole visible recommendation list's length when rec_items is its kept
      prefix (see prefix_is_exact); default the count of rec_valid.
  """
  rec_pos, new_pos = interleaved_positions(rec_valid, new_valid, n_recs)
  items = jnp.concatenate([rec_items, new_items], -1)
  pos = jnp.concatenate([rec_pos, new_pos], -1)
  valid = pos >= 0
  u = jnp.take_along_axis(utility, jnp.where(valid, items, 0), -1)
  value = jnp.where(valid, u * (1.0 + pos.astype(utility.dtype)) ** -discount, -jnp.inf)
  best = jnp.max(value, -1, keepdims=True)
  # The earliest position among the best values (the scan's first).
  first = jnp.argmin(jnp.where(value == best, pos, jnp.iinfo(jnp.int32).max), -1)
  chosen = jnp.take_along_axis(items, first[:, None], -1)[:, 0]
  ok = best[:, 0] > reserve
  return jnp.where(ok, chosen, -1), ok & (first < rec_items.shape[-1]), best[:, 0]


def prefix_is_exact(k: int, n_recs, n_new, u_max, best, reserve, discount: float):
  """[b] bool: no recommended item past the first k (of n_recs visible) could have been
  chosen: every such item sits at position >= min(2k, m + k) (m = min(n_recs, n_new)), so its
  discounted utility is at most u_max (1 + that)^-discount (u_max [b]: an upper bound of the
  user's utilities), which must not exceed the choice's value nor the reserve."""
  m = jnp.minimum(n_recs, n_new)
  first = jnp.where(k < m, 2 * k, m + k).astype(u_max.dtype)
  bound = u_max * (1.0 + first) ** -discount
  return (n_recs <= k) | (bound <= jnp.maximum(best, reserve))
