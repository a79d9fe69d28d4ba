"""A plain numpy rendering of the Brennan–Holtz simulation, period by period and user by user,
as the replication page states it: the test oracle of the compiled choice environment and
its counting rankers (loops over users and list positions on purpose: it must be easy to read
against the page, not fast).

Conventions (written where the page leaves a choice): periods t = 0 .. T-1, the items released
at t are [t N, (t + 1) N); the ranked list of period t holds the released items, id < t N;
consumed items keep their place at the bottom of a CF ranker's list, ordered by the noise; the
noise is higher-first; a user consumes the item of the highest discounted utility when that
discounted value exceeds the reserve (strictly); take-up is a consumed item with id < t N.
"""

import numpy as np

RANKERS = ("item_cf", "user_cf", "random", "oracle")


TIE_DIGITS = 9  # Scores are compared rounded to 1e-9: float64's rounding (1e-16) would
# otherwise break ties of equal real numbers reached through different sums (items 19, 28 and
# 44 of the test's world: 4.053171996137778 and ...779), which the page breaks by the noise.


def item_cf_scores(x):
  """[U, I]: sum_j cos(i, j) x_uj over the item columns of x (a zero column: similarity 0)."""
  norm = np.sqrt((x * x).sum(0))
  sim = (x.T @ x) / np.where(norm[:, None] * norm[None, :] > 0, norm[:, None] * norm[None, :],
                             np.inf)
  return np.round(x @ sim, TIE_DIGITS)


def user_cf_scores(x):
  """[U, I]: sum_v W_uv x_vi with W = X X^T, its diagonal 0."""
  w = x @ x.T
  np.fill_diagonal(w, 0)
  return w @ x


def ranked(ranker, u, x, released, noise, utility):
  """The ids of the released items in the order `ranker` lists them for user u."""
  items = np.flatnonzero(released)
  consumed = x[u, items] > 0
  if ranker in ("item_cf", "user_cf"):
    score = (item_cf_scores(x) if ranker == "item_cf" else user_cf_scores(x))[u, items]
    score = np.where(consumed, -np.inf, score)
    # Higher score first; ties (and the consumed items' -inf) by higher noise.
    order = np.lexsort((-noise[u, items], -score))
  elif ranker == "random":
    order = np.argsort(-noise[u, items], kind="stable")
  elif ranker == "oracle":
    primary = np.where(consumed, -np.inf, utility[u, items])
    order = np.lexsort((-noise[u, items], -primary))
  else:
    raise ValueError(ranker)
  return items[order]


def interleave(recs, new):
  """rec 1, new 1, rec 2, new 2, ... while both have items, then the longer list's rest."""
  out = []
  for j in range(max(len(recs), len(new))):
    if j < len(recs):
      out.append(recs[j])
    if j < len(new):
      out.append(new[j])
  return np.asarray(out, np.int64)


def choose(scan, utility_u, reserve_u, discount):
  """The consumed item of one user's scanned list, or -1 (the outside option)."""
  if len(scan) == 0:
    return -1
  value = utility_u[scan] * (1.0 + np.arange(len(scan))) ** -discount
  best = int(np.argmax(value))
  return int(scan[best]) if value[best] > reserve_u else -1


def run(world, rankers, arm, t_total, warmup, n_new, noise, new_order, diverted=False,
        item_arm=None, discount=0.8, frozen=False):
  """One run. rankers: (ranker of arm 0, of arm 1); arm [U] in {0, 1}; noise(t) -> [U, I];
  new_order(t, u) -> a permutation of range(n_new); diverted: each arm's ranker trains on its
  own arm's users' rows only; item_arm [I] or None: co-diverted (a user sees its arm's items);
  frozen: the rankers rank from the matrix at the start of period `warmup` (a snapshot).
  Returns (take-up [T, U] in {0, 1}, consumed [T, U] item id or -1)."""
  n_users, n_items = world.utility.shape
  x = np.zeros((n_users, n_items))
  take_up = np.zeros((t_total, n_users))
  consumed = np.full((t_total, n_users), -1)
  for t in range(t_total):
    released = np.arange(n_items) < t * n_new
    z_noise = noise(t)
    start = x.copy()  # Every list of the period is computed from the data at its start.
    if frozen and t == warmup:
      snapshot = x.copy()
    if frozen and t >= warmup:
      start = snapshot
    for u in range(n_users):
      a = arm[u]
      own = arm == a
      train = np.where(own[:, None], start, 0) if diverted else start
      new = np.arange(t * n_new, (t + 1) * n_new)[new_order(t, u)]
      recs = (ranked(rankers[a], u, train, released, z_noise, world.utility) if t >= warmup
              else np.zeros(0, np.int64))
      if item_arm is not None:
        recs = recs[item_arm[recs] == a]
        new = new[item_arm[new] == a]
      i = choose(interleave(recs, new), world.utility[u], world.reserve[u], discount)
      consumed[t, u] = i
      if i >= 0:
        x[u, i] = 1
        take_up[t, u] = float(i < t * n_new)
  return take_up, consumed
