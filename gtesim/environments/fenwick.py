"""Window-free uniform candidate sampling in packed environments (replay, matrix).

A user's slots fill pages [first_page, first_page + n_pages) (data/packing.py). Each world
keeps, per page, the count of its *eligible* slots (a train video, of the user's class, not
yet recommended in this world) in a Fenwick tree laid over each user's pages: node i (1-based
within the user) holds the count of the user's pages (i - lowbit(i), i]. Drawing a candidate is
then: a rank r uniform in [0, n_eligible), a descent of the tree to the page holding the r-th
eligible slot (O(log R), R = the longest user's page count) and a scan of that page's C slots;
marking a slot used decrements O(log R) nodes. A step costs O(batch x n_candidate x (log R + C))
whatever the users' history lengths, and the state is [classes, P] int32 per world (one int per
C slots) beside the used mask.

The n_candidate ranks of a user are sequential draws without replacement (draw i uniform among
the n - i ranks not drawn yet), so the candidates are an exactly uniform ordered sample of the
eligible slots (up to jax.random.randint's ~n / 2^64 modulo bias), and ties in score are broken
at random. A rank names "the r-th eligible slot in slot order", so two worlds with the same
eligible slots draw the same candidates from the same key.

Classes: co-diverted keeps one tree per arm (class a = slots whose video is in arm a); a user
draws from its arm's tree. Every other design has one class.
"""

import math

import jax
import jax.numpy as jnp

_NONE = jnp.iinfo(jnp.int32).max


def levels(max_pages: int) -> int:
  """Iterations of a descent or an update over trees of at most `max_pages` nodes."""
  return max(1, math.floor(math.log2(max(max_pages, 1))) + 1)


def build(counts, page_rank):
  """Fenwick trees [K, P] of per-page counts [K, P] (`page_rank` [P]: 0-based index of each
  page among its user's pages)."""
  cum = jnp.cumsum(counts, axis=-1)
  i = page_rank + 1
  start = jnp.arange(counts.shape[-1]) - (i & -i) + 1  # Global page of node i's first page.
  return cum - (cum - counts)[:, start]


def total(tree, cls, base, n_pages, n_levels: int):
  """Sum of the counts of each user's pages: tree [K, P]; cls, base, n_pages [b]."""
  out = jnp.zeros_like(n_pages)
  i = n_pages
  for _ in range(n_levels):
    out += jnp.where(i > 0, tree[cls, base + jnp.maximum(i, 1) - 1], 0)
    i = i - (i & -i)
  return out


def search(tree, cls, base, n_pages, rank, n_levels: int):
  """(local page [..], rank within that page [..]) of the rank-th (0-based) counted slot of
  each user's pages; all arguments broadcast to the ranks' shape but `tree`."""
  pos = jnp.zeros_like(rank)
  for level in reversed(range(n_levels)):
    nxt = pos + (1 << level)
    inside = nxt <= n_pages
    value = tree[cls, base + jnp.where(inside, nxt, 1) - 1]
    go = inside & (value <= rank)
    pos = jnp.where(go, nxt, pos)
    rank = jnp.where(go, rank - value, rank)
  return pos, rank


def decrement(tree, cls, base, n_pages, local, ok, n_levels: int):
  """The trees with one slot fewer on each user's page `local` [b] (where `ok` [b])."""
  i = local + 1
  out_of_range = tree.shape[1]
  for _ in range(n_levels):
    index = jnp.where(ok & (i <= n_pages), base + i - 1, out_of_range)
    tree = tree.at[cls, index].add(-1, mode="drop")
    i = i + (i & -i)
  return tree


def distinct_ranks(key, n, k: int):
  """[b, k] ranks drawn without replacement from [0, n) per row (n [b] int32): draw i is
  uniform among the n - i ranks not drawn yet. Entries i >= n are invalid (second output)."""
  b = n.shape[0]
  left = jnp.maximum(n[:, None] - jnp.arange(k), 1)
  s = jax.random.randint(key, (b, k), 0, left)
  drawn = jnp.full((b, k), _NONE, jnp.int32)  # The ranks drawn so far, sorted (padded).
  column = jnp.arange(k)
  values = []
  for i in range(k):
    # The s-th rank not drawn yet is s + #{j: d_(j) - j <= s} over the sorted drawn d_(j)
    # (d_(j) - j ranks are free below d_(j)); then it is inserted in order.
    value = s[:, i:i + 1] + jnp.sum(drawn - column <= s[:, i:i + 1], axis=1, keepdims=True)
    at = jnp.sum(drawn < value, axis=1, keepdims=True)
    shifted = jnp.concatenate([drawn[:, :1], drawn[:, :-1]], axis=1)
    drawn = jnp.where(column < at, drawn, jnp.where(column == at, value, shifted))
    values.append(value)
  chosen = jnp.concatenate(values, axis=1)
  return chosen, jnp.arange(k) < n[:, None]


def more_ranks(key, n, k: int, n_draws: int):
  """[b, n_draws] ranks of [0, n): `distinct_ranks`' k, then n_draws - k uniform draws with
  replacement, each kept only if it repeats no earlier one (second output: kept). The kept
  ranks in order are a uniform ordered sample without replacement (a rejected repeat is a
  draw among the ranks not drawn yet, by rejection) at O(n_draws^2) compares per user in one
  op, not distinct_ranks' n_draws sequential ones."""
  first_key, more_key = jax.random.split(key)
  rank, valid = distinct_ranks(first_key, n, k)
  rank = jnp.where(valid, rank, -1)
  extra = jax.random.randint(more_key, (n.shape[0], n_draws - k), 0, jnp.maximum(n, 1)[:, None])
  every = jnp.concatenate([rank, extra], axis=1)
  earlier = jnp.tril(jnp.ones((n_draws, n_draws), bool), k=-1)[k:]  # [n_draws - k, n_draws]
  repeat = jnp.any((extra[:, :, None] == every[:, None, :]) & earlier, axis=-1)
  return jnp.maximum(every, 0), jnp.concatenate([valid, ~repeat & (n[:, None] > 0)], axis=1)


def candidates(tree, used, page_video, train_video, first_page, n_pages, users, cls, key,
               n_candidate: int, n_levels: int, allowed=None, released=None, n_draws: int = 0):
  """Up to n_candidate eligible slots per user, uniformly without replacement.

  Args:
    tree: [K, P] Fenwick trees of eligible unused slots per page (`build`).
    used: [P, C] bool, slots recommended in this world.
    page_video: [P', C] int32 video of each slot (-1 empty); train_video: [V] bool.
    first_page, n_pages: [U] the users' pages; users, cls: [b] the step's users and classes.
    allowed: videos [b, k, C] -> bool, the class's further restriction (co-diverted), or None.
    released: videos [b, n_draws] -> bool, a restriction the trees do not count (staggered
      release), or None. Then n_draws >= n_candidate ranks are drawn (`more_ranks`) and the
      first n_candidate released slots among them kept: a filter of a uniform ordered sample,
      hence a uniform ordered sample of the released eligible slots (fewer when fewer were
      among the draws).

  Returns:
    (page [b, k], col [b, k], video [b, k], valid [b, k], n_eligible [b]: the trees' count,
    or with `released` the distinct released slots among the draws).
  """
  base, count = first_page[users], n_pages[users]
  n_eligible = total(tree, cls, base, count, n_levels)
  if released is None:
    k = n_candidate
    rank, valid = distinct_ranks(key, n_eligible, k)
  else:
    k = n_draws
    rank, valid = more_ranks(key, n_eligible, n_candidate, n_draws)
  rank = jnp.where(valid, rank, 0)
  local, within = search(tree, cls[:, None], base[:, None], count[:, None], rank, n_levels)
  page = jnp.where(valid, base[:, None] + local, 0)
  video = page_video[page]  # [b, k, C]
  ok = (video >= 0) & train_video[jnp.maximum(video, 0)] & ~used[page]
  if allowed is not None:
    ok &= allowed(jnp.maximum(video, 0))
  # Running counts of eligible slots along the page, as a matmul (exact: small integers).
  running = ok.astype(jnp.float32) @ jnp.triu(jnp.ones((ok.shape[-1],) * 2, jnp.float32))
  col = jnp.argmax(running > within[..., None], axis=-1).astype(jnp.int32)
  chosen = jnp.where(valid, jnp.take_along_axis(video, col[..., None], axis=-1)[..., 0], 0)
  if released is None:
    return page, col, chosen, valid, n_eligible
  valid &= released(chosen)
  # The first n_candidate released draws, in draw order.
  first, idx = jax.lax.top_k(jnp.where(valid, k - jnp.arange(k), 0), n_candidate)
  pick = lambda x: jnp.take_along_axis(x, idx, axis=1)
  return pick(page), pick(col), pick(chosen), first > 0, jnp.sum(valid, axis=1, dtype=jnp.int32)
