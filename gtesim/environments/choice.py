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

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gtesim import prng
from gtesim.models import counting


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
  # Every position's discount, once (a power per list entry cost more than the rest of the
  # choice). A position is below 2 (R + N): a kept prefix's new items can sit past its
  # R + N entries.
  factor = (1.0 + jnp.arange(2 * items.shape[-1], dtype=utility.dtype)) ** -discount
  value = jnp.where(valid, u * factor[jnp.maximum(pos, 0)], -jnp.inf)
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
  user's utilities), which must be below the choice's value or at most the reserve."""
  m = jnp.minimum(n_recs, n_new)
  first = jnp.where(k < m, 2 * k, m + k).astype(u_max.dtype)
  bound = u_max * (1.0 + first) ** -discount
  # Strictly below the choice's value (an equal value at an earlier position would win) or
  # at most the reserve (consuming needs more than it).
  return (n_recs <= k) | (bound < best) | (bound <= reserve)


# --- runs of the choice world: every user, every period ---------------------------------------

_NOISE_BASE = 0x10000000  # Noise bit patterns start here: positive normal float32s, so the
# float order is the integer order (no denormal a flush-to-zero CPU would compare as 0).
INVALID_NOISE = -1.0  # Below every noise: an item that is not in the list.


def _hash_grid(seeds, t, rows: int, cols: int):
  """[rows, cols] uint32: a keyed hash of (t, row, col) under two uint32 seeds."""
  r = jnp.arange(rows, dtype=jnp.uint32)[:, None]
  c = jnp.arange(cols, dtype=jnp.uint32)[None, :]
  h = prng.mix32(prng.mix32(r ^ seeds[0]) + jnp.asarray(t, jnp.uint32))
  return prng.mix32(prng.mix32(h ^ c) + seeds[1])


def tie_noise(seeds, t, n_users: int, n_items: int):
  """[U, I] float32: the period's tie-break noise of every (user, item), higher first.

  A hash of (seeds, t, u, i) (so every ranker and every world of a run sees the same value,
  as the page's shared standard normal: only its order matters, which any monotone map of a
  uniform keeps), 30 bits of it as the bit pattern of a positive float32 (float32 top_k is
  XLA's fast one; the bit patterns keep the integers' order). Two equal values (about 1 in
  2^30 per pair) fall back to the lower id."""
  bits = (_hash_grid(seeds, t, n_users, n_items) >> 2) + jnp.uint32(_NOISE_BASE)
  return jax.lax.bitcast_convert_type(bits, jnp.float32)


def new_item_order(seeds, t, n_users: int, n_new: int):
  """[U, N] int32: each user's own shuffle of the period's N new items: their order by a
  keyed hash (equal hashes by index, as a stable argsort), by counting each item's
  predecessors (O(N^2) compares: XLA CPU's sort costs more at small N)."""
  h = _hash_grid(seeds, t, n_users, n_new)
  idx = jnp.arange(n_new)
  before = (h[:, None, :] < h[:, :, None]) | ((h[:, None, :] == h[:, :, None]) &
                                              (idx[None, :] < idx[:, None]))
  rank = jnp.sum(before, -1)  # [U, N] each item's place in the order.
  return jnp.sum(jnp.where(rank[:, :, None] == idx, idx[:, None], 0), -2).astype(jnp.int32)


@dataclasses.dataclass(frozen=True)
class RunSpec:
  """The static shape of a chunk of runs: the rankers of arms 0 (algo1) and 1 (algo2), or one
  for a world where everyone gets the same; how they train; the period's sizes."""
  rankers: tuple  # counting.CountingRanker per arm.
  n_periods: int
  warmup: int  # Periods without recommendations.
  n_new: int  # Items released per period, in id order.
  kept: int  # Length of the kept prefix of each ranked list (prefix_is_exact guards it).
  fallback_rows: int  # Users per chunk and period whose choice may need their whole list.
  discount: float
  kept_wide: int = 0  # The longer prefix the users whose kept prefix did not suffice get
  # before their whole list (0: straight to the whole list).
  wide_rows: int = 0  # Users per chunk and period who can get it.
  training: str = "pooled"  # "pooled": every ranker trains on every user's consumption;
  # "diverted": arm a's ranker on arm a's users' rows only; "frozen": on the matrix at the
  # start of the first recommending period (snapshot), never updated.
  item_arms: bool = False  # Co-diverted: a user sees only its own arm's items.
  segments: int = 4  # Spans of the recommending periods, each ranking only the items
  # released by its end (segments()).

  @property
  def arms(self) -> int:
    return len(self.rankers)

  @property
  def keeps_gram(self) -> bool:
    """The state carries X X^T, updated with X (a frozen ranker computes its own once a
    period from the snapshot)."""
    return self.training != "frozen" and any(r.uses_gram for r in self.rankers)


class World(NamedTuple):
  """The environment's arrays (data/choice_world.py), float32 on the device."""
  utility: jax.Array  # [U, I]
  reserve: jax.Array  # [U]


class RunInputs(NamedTuple):
  """What one run draws: its arms and its hash seeds."""
  arm: jax.Array  # [T, U] int32: each user's arm in each period (0 = algo1, 1 = algo2).
  item_arm: jax.Array  # [I] int32: each item's arm (co-diverted; unused otherwise).
  seeds: jax.Array  # [4] uint32: tie-break noise (0, 1) and new-item order (2, 3).


class RunState(NamedTuple):
  x: jax.Array  # [U, I] float32: 1 where the user has ever consumed the item.
  frozen: jax.Array  # [U, I] the snapshot's matrix ("frozen" training), else [0, 0].
  gram: jax.Array  # [U, U] X X^T where a ranker uses it and X changes (spec.keeps_gram),
  # else [0, 0].
  user_take: jax.Array  # [U, A] float32: counted take-ups per user and arm.
  user_n: jax.Array  # [U, A] float32: counted periods per user and arm.


class PeriodOut(NamedTuple):
  """What a period reports, per run."""
  take: jax.Array  # [A] take-ups per arm.
  n: jax.Array  # [A] users per arm.
  consumed: jax.Array  # [A] users who consumed anything.
  from_list: jax.Array  # [A] users who consumed a recommended item.
  fallback: jax.Array  # [] users whose kept prefix could have missed their choice (a longer
  # prefix or their whole list decided it).
  whole: jax.Array  # [] users whose whole list decided their choice.
  overflow: jax.Array  # [] the chunk's such users beyond its fallback rows (their choices
  # may be wrong: the chunk's runs are refused).


class Lists(NamedTuple):
  """One run's period up to the choice (per user)."""
  score: jax.Array  # [U, I] each user's arm's scores, -inf outside its list.
  noise: jax.Array  # [U, I] tie-break noise, INVALID_NOISE outside its list.
  n_recs: jax.Array  # [U] items in its list.
  new: jax.Array  # [U, N] the new items in its order.
  new_valid: jax.Array  # [U, N]
  item: jax.Array  # [U] consumed item (-1: nothing).
  from_list: jax.Array  # [U] bool: it was recommended.
  exact: jax.Array  # [U] bool: the kept prefix chose as the whole list would.


def products_per_period(spec: RunSpec) -> int:
  """The [U, U] x [U, width] matmuls a period of `spec` runs (benchmarks count its FLOPs):
  one shared by two CF arms (or one per CF ranker), plus each ranker's factor L that the
  state does not keep."""
  cf = [r for r in spec.rankers if isinstance(r, counting.FactoredCF)]
  kept = spec.keeps_gram
  shared = 1 if spec.arms > 1 and len(cf) == spec.arms else len(cf)
  return shared + sum(not (kept and r.uses_gram) for r in cf)


def _scores(spec: RunSpec, world: World, state: RunState, arm, valid):
  """[U, I] each user's scores by its arm's ranker, -inf outside its list."""
  src = state.frozen if spec.training == "frozen" else state.x
  diverted = spec.training == "diverted"
  xs = [src * (arm == a)[:, None] if diverted else src for a in range(spec.arms)]
  grams = None
  if spec.keeps_gram:  # A diverted arm's X_a X_a^T: the arm's rows and columns of X X^T.
    grams = [state.gram * ((arm == a)[:, None] & (arm == a)[None, :]) if diverted else
             state.gram for a in range(spec.arms)]
  if spec.arms > 1 and all(isinstance(r, counting.FactoredCF) for r in spec.rankers):
    score = counting.shared_scores(spec.rankers, xs, src, arm, grams)  # One product.
  else:
    score = None
    for a, (ranker, xa) in enumerate(zip(spec.rankers, xs)):
      sa = ranker.scores(xa, world.utility if ranker.reads_utility else None,
                         grams[a] if grams else None)
      score = sa if score is None else jnp.where((arm == a)[:, None], sa, score)
  return jnp.where(valid, score, -jnp.inf)


def lists(spec: RunSpec, world: World, run: RunInputs, state: RunState, t, arm,
          width: int) -> Lists:
  """Every user's list and choice from its kept prefix, and whether the prefix sufficed.
  `width`: the items [0, width) hold every item released by period t (the ranked lists are
  computed on them; the rest are unreleased, unconsumed and unscored); 0 in the warm-up,
  where only new items are shown (nothing is ranked)."""
  n_users, n_items = world.utility.shape
  new = t * spec.n_new + new_item_order(run.seeds[2:], t, n_users, spec.n_new)
  new_valid = new < n_items
  new = jnp.minimum(new, n_items - 1)
  if spec.item_arms:
    new_valid &= run.item_arm[new] == arm[:, None]
  if width == 0:
    none = jnp.zeros((n_users, 0))
    item, from_list, _ = choose(none.astype(jnp.int32), none.astype(bool), new, new_valid,
                                world.utility, world.reserve, spec.discount)
    return Lists(none, none, jnp.zeros(n_users, jnp.int32), new, new_valid, item, from_list,
                 jnp.ones(n_users, bool))
  recommending = t >= spec.warmup
  released = jnp.arange(width) < t * spec.n_new
  visible = (run.item_arm[None, :width] == arm[:, None]) if spec.item_arms else True
  valid = jnp.broadcast_to(released[None, :] & visible & recommending, (n_users, width))
  n_recs = jnp.sum(valid, -1)
  utility = world.utility[:, :width]
  score = _scores(spec, World(utility, world.reserve),
                  state._replace(x=state.x[:, :width], frozen=state.frozen[:, :width]), arm,
                  valid)
  noise = jnp.where(valid, tie_noise(run.seeds[:2], t, n_users, width), INVALID_NOISE)
  item, from_list, exact = prefix_choices(spec.kept, score, noise, n_recs, new, new_valid,
                                          world.utility, world.reserve, spec.discount)
  return Lists(score, noise, n_recs, new, new_valid, item, from_list, exact | ~recommending)


def prefix_choices(k: int, score, noise, n_recs, new, new_valid, utility, reserve,
                   discount: float):
  """(item [b], from_list [b], exact [b]): each user's choice from the first k of its ranked
  list (score, then noise; noise INVALID_NOISE outside the list) and the new items, and
  whether the prefix chose as the whole list would (prefix_is_exact). `utility` [b, I]
  covers every item; the lists cover the first `score.shape[-1]` of them."""
  valid = noise != INVALID_NOISE
  rec = counting.top_ranking(score, noise, k)
  item, from_list, best = choose(rec, jnp.take_along_axis(valid, rec, -1), new, new_valid,
                                 utility, reserve, discount, n_recs)
  kept = jnp.zeros_like(valid).at[jnp.arange(valid.shape[0])[:, None], rec].set(True)
  u_rest = jnp.max(jnp.where(valid & ~kept, utility[:, :valid.shape[-1]], 0.0), -1)
  exact = prefix_is_exact(k, n_recs, jnp.sum(new_valid, -1), u_rest, best, reserve, discount)
  return item, from_list, exact


def segments(spec: RunSpec, n_items: int) -> list:
  """[(first period, end period, width)]: the warm-up (width 0: nothing is ranked), then
  `spec.segments` spans of the recommending periods, each computing its lists on the items
  released by its last period (at least the longest prefix's count of them, at most all): a
  list's cost grows with its width."""
  least = max(spec.kept, spec.kept_wide)  # top_k needs as many items as its prefix.
  out = [(0, spec.warmup, 0)] if spec.warmup else []
  bounds = np.linspace(spec.warmup, spec.n_periods, spec.segments + 1).round().astype(int)
  for a, b in zip(bounds[:-1], bounds[1:]):
    if b > a:
      out.append((int(a), int(b), int(min(n_items, max(least, (b - 1) * spec.n_new)))))
  return out


def fallback_tiers(rows: int, first: int = 8, step: int = 4) -> tuple:
  """The row counts a retry computes (it takes the smallest that holds the period's users;
  the cost is per row): first, first * step, ... up to `rows`."""
  sizes, size = [], first
  while size < rows:
    sizes.append(size)
    size *= step
  return tuple(sizes) + (rows,)


def _retry(need, tiers, redo, carry):
  """carry after `redo(size, at, carry)` on the rows where `need` (flat [n]) holds, at the
  smallest tier size that holds them (lax.switch; none: carry unchanged). `at` [size]: their
  indices, padded with n (past the end: written back with mode="drop")."""
  n_need = jnp.sum(need)
  n_rows = need.shape[0]

  def branch(size, c):
    (at,) = jnp.nonzero(need, size=size, fill_value=n_rows)
    return redo(size, at, c)

  index = jnp.where(n_need == 0, 0, 1 + jnp.searchsorted(jnp.asarray(tiers), n_need))
  return jax.lax.switch(jnp.minimum(index, len(tiers)),
                        [lambda c: c] + [functools.partial(branch, size) for size in tiers],
                        carry)


def whole_list_choices(spec: RunSpec, utility, reserve, ls: Lists):
  """Lists with the choices of the users whose kept prefix did not suffice retried: from
  the first `spec.kept_wide` items of their lists (up to `spec.wide_rows` users; skipped when
  kept_wide is 0), and where that does not suffice either, from their whole lists (up to
  `spec.fallback_rows`). The batch's leading axes are flattened. Returns (lists, users
  beyond the rows, [b...] whether each user's whole list decided its choice)."""
  flat = jax.tree.map(lambda a: a.reshape((-1,) + a.shape[2:]), ls)
  u_flat = utility.reshape((-1, utility.shape[-1]))
  r_flat = reserve.reshape(-1)
  n_rows = flat.exact.shape[0]
  need = ~flat.exact
  overflow = jnp.zeros((), jnp.int32)

  def gathered(at):
    rows = jnp.minimum(at, n_rows - 1)
    return (flat.score[rows], flat.noise[rows], flat.n_recs[rows], flat.new[rows],
            flat.new_valid[rows], u_flat[rows], r_flat[rows])

  def write(chosen, at, values):
    return tuple(a.at[at].set(v, mode="drop") for a, v in zip(chosen, values))

  # Only the choices go through the branches (the scores stay where they are).
  chosen = (flat.item, flat.from_list)
  if spec.kept_wide:
    def redo_wide(size, at, carry):
      score, noise, n_recs, new, new_valid, u, r = gathered(at)
      item, from_list, exact = prefix_choices(spec.kept_wide, score, noise, n_recs, new,
                                              new_valid, u, r, spec.discount)
      return write(carry, at, (item, from_list, ~exact))

    overflow += jnp.maximum(jnp.sum(need) - spec.wide_rows, 0)
    *chosen, need = _retry(need, fallback_tiers(spec.wide_rows, 64, 4), redo_wide,
                           chosen + (jnp.zeros_like(need),))
  n_whole = jnp.sum(need)

  def redo_whole(size, at, carry):
    score, noise, n_recs, new, new_valid, u, r = gathered(at)
    order = counting.ranking(score, noise)
    item, from_list, _ = choose(order, jnp.take_along_axis(noise != INVALID_NOISE, order, -1),
                                new, new_valid, u, r, spec.discount, n_recs)
    return write(carry, at, (item, from_list))

  item, from_list = _retry(need, fallback_tiers(spec.fallback_rows), redo_whole, tuple(chosen))
  overflow += jnp.maximum(n_whole - spec.fallback_rows, 0)
  shape = ls.item.shape
  return (ls._replace(item=item.reshape(shape), from_list=from_list.reshape(shape)), overflow,
          need.reshape(shape))


def update(spec: RunSpec, state: RunState, t, arm, ls: Lists):
  """One run's state after the period's consumption, and its arms' sums."""
  n_users = arm.shape[0]
  item = ls.item
  take = ((item >= 0) & (item < t * spec.n_new)).astype(jnp.float32)
  x = state.x.at[jnp.arange(n_users), jnp.maximum(item, 0)].max(
      (item >= 0).astype(jnp.float32))
  if spec.keeps_gram:
    state = state._replace(gram=counting.update_gram(state.gram, state.x, item))
  in_arm = (arm[:, None] == jnp.arange(spec.arms)[None, :]).astype(jnp.float32)  # [U, A]
  counted = (t >= spec.warmup).astype(jnp.float32)
  state = state._replace(x=x, user_take=state.user_take + counted * in_arm * take[:, None],
                         user_n=state.user_n + counted * in_arm)
  return state, (take @ in_arm, jnp.sum(in_arm, 0), (item >= 0).astype(jnp.float32) @ in_arm,
                 ls.from_list.astype(jnp.float32) @ in_arm)


def init_state(spec: RunSpec, n_users: int, n_items: int) -> RunState:
  frozen = (n_users, n_items) if spec.training == "frozen" else (0, 0)
  gram = (n_users, n_users) if spec.keeps_gram else (0, 0)
  zeros = jnp.zeros((n_users, spec.arms), jnp.float32)
  return RunState(jnp.zeros((n_users, n_items), jnp.float32),
                  jnp.zeros(frozen, jnp.float32), jnp.zeros(gram, jnp.float32), zeros, zeros)


def simulate_chunk(spec: RunSpec, world: World, runs: RunInputs):
  """A chunk of runs (RunInputs and World with a leading run axis [R]) over every period, one
  scan per segment: (final RunStates, PeriodOut [T, R, ...])."""
  n_runs, n_users, n_items = world.utility.shape

  def one_period(width, states, xs):
    t, arm = xs  # arm [R, U]
    if spec.training == "frozen":
      states = states._replace(frozen=jnp.where(t == spec.warmup, states.x, states.frozen))
    ls = jax.vmap(lambda w, r, s, a: lists(spec, w, r, s, t, a, width))(world, runs, states,
                                                                      arm)
    fallback = jnp.sum(~ls.exact, -1)
    if width:
      ls, n_overflow, whole = whole_list_choices(spec, world.utility, world.reserve, ls)
    else:  # The warm-up: every choice is exact.
      n_overflow, whole = jnp.zeros((), jnp.int32), ~ls.exact
    states, sums = jax.vmap(lambda s, a, l: update(spec, s, t, a, l))(states, arm, ls)
    return states, PeriodOut(*sums, fallback, jnp.sum(whole, -1),
                             jnp.full(n_runs, n_overflow))

  states = jax.vmap(lambda _: init_state(spec, n_users, n_items))(jnp.arange(n_runs))
  arms = jnp.moveaxis(runs.arm, 1, 0)
  outs = []
  for first, end, width in segments(spec, n_items):
    states, out = jax.lax.scan(functools.partial(one_period, width), states,
                               (jnp.arange(first, end), arms[first:end]))
    outs.append(out)
  return states, jax.tree.map(lambda *a: jnp.concatenate(a), *outs)
