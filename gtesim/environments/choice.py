"""The Brennan–Holtz choice world's period, as pure jit-able functions over a batch of users.

A user scans one interleaved list: recommended item 1, new item 1, recommended 2, new 2, ...
while both lists have items, then the longer list's rest; position j (0-based) discounts the
user's utility by (1 + j)^-discount. The user consumes the item of the highest discounted
utility when that value exceeds its reserve utility (strictly), else nothing (the outside
option); equal values go to the earlier position. Items a user may not see (co-diverted:
another arm's) are left out of both lists before interleaving, so the visible ones keep their
order and close up.
"""

import jax.numpy as jnp


def positions(valid):
  """[b, n] int32: each item's rank among the valid items of its list (-1 where invalid)."""
  rank = jnp.cumsum(valid.astype(jnp.int32), axis=-1) - 1
  return jnp.where(valid, rank, -1)


def interleaved_positions(rec_valid, new_valid):
  """Positions in the scanned list of the recommended [b, R] and new [b, N] items (-1 where
  invalid): with m the shorter list's length, item j of either list is at 2j (recommended) or
  2j + 1 (new) while j < m, then at m + j."""
  r, n = positions(rec_valid), positions(new_valid)
  m = jnp.minimum(jnp.sum(rec_valid, -1), jnp.sum(new_valid, -1))[:, None]
  rec_pos = jnp.where(r < m, 2 * r, m + r)
  new_pos = jnp.where(n < m, 2 * n + 1, m + n)
  return jnp.where(rec_valid, rec_pos, -1), jnp.where(new_valid, new_pos, -1)


def choose(rec_items, rec_valid, new_items, new_valid, utility, reserve, discount: float):
  """The consumed item [b] (-1: nothing) and whether it was recommended [b].

  Args:
    rec_items [b, R], new_items [b, N]: item ids in list order; *_valid: visible.
    utility: [b, I] each user's utilities; reserve: [b]; discount: the position exponent.
  """
  rec_pos, new_pos = interleaved_positions(rec_valid, new_valid)
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
  return jnp.where(ok, chosen, -1), ok & (first < rec_items.shape[-1])
