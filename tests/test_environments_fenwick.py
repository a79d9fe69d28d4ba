"""The window-free uniform candidate sampler of packed environments (environments/fenwick.py)."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats

from gtesim.environments import fenwick


def _layout(n_pages_per_user):
  n_pages = np.asarray(n_pages_per_user, np.int32)
  first = (np.cumsum(n_pages) - n_pages).astype(np.int32)
  owner = np.repeat(np.arange(len(n_pages)), n_pages)
  rank = (np.arange(n_pages.sum()) - first[owner]).astype(np.int32)
  return first, n_pages, rank


def test_fenwick_total_search_and_decrement_match_brute_force():
  gen = np.random.default_rng(0)
  first, n_pages, rank = _layout([1, 5, 0, 13, 64, 2, 100])
  counts = gen.integers(0, 33, size=(2, len(rank))).astype(np.int32)
  levels = fenwick.levels(int(n_pages.max()))
  tree = fenwick.build(jnp.asarray(counts), jnp.asarray(rank))
  users = np.arange(len(n_pages))
  for cls in (0, 1):
    c = np.full(len(users), cls)
    got = fenwick.total(tree, c, first[users], n_pages[users], levels)
    want = [counts[cls, first[u]:first[u] + n_pages[u]].sum() for u in users]
    np.testing.assert_array_equal(got, want)
  for step_ in range(30):  # Decrements, then every rank of every user against a flat search.
    u = gen.integers(0, len(users), size=3)
    u = u[n_pages[u] > 0]
    local = (gen.random(len(u)) * n_pages[u]).astype(np.int32)
    ok = counts[step_ % 2, first[u] + local] > 0
    ok &= np.array([i == list(u).index(x) for i, x in enumerate(u)])  # Distinct users.
    counts[step_ % 2, (first[u] + local)[ok]] -= 1
    tree = fenwick.decrement(tree, jnp.full(len(u), step_ % 2), first[u], n_pages[u],
                                  local, ok, levels)
  np.testing.assert_array_equal(tree, fenwick.build(jnp.asarray(counts), jnp.asarray(rank)))
  for u in users:
    row = counts[1, first[u]:first[u] + n_pages[u]]
    ranks = np.arange(row.sum())
    page, within = fenwick.search(tree, 1, first[u], n_pages[u], jnp.asarray(ranks), levels)
    want_page = np.searchsorted(np.cumsum(row), ranks, side="right")
    np.testing.assert_array_equal(page, want_page)
    np.testing.assert_array_equal(within, ranks - (np.cumsum(row) - row)[want_page])


def test_distinct_ranks_are_uniform_ordered_samples_without_replacement():
  n, k, trials = 5, 3, 30_000
  keys = jax.random.split(jax.random.key(0), trials)
  ranks, valid = jax.vmap(lambda key: fenwick.distinct_ranks(
      key, jnp.array([n, 2], jnp.int32), k))(keys)
  ranks, valid = np.asarray(ranks), np.asarray(valid)
  assert valid[:, 0].all() and (valid[:, 1] == [True, True, False]).all()
  # A user with fewer eligible slots than k gets every one of them.
  assert set(map(tuple, np.sort(ranks[:, 1, :2], axis=1))) == {(0, 1)}
  full = ranks[:, 0]
  assert (full >= 0).all() and (full < n).all()
  assert all(len(set(r)) == k for r in full)
  index = {p: i for i, p in enumerate(itertools.permutations(range(n), k))}
  counts = np.bincount([index[tuple(r)] for r in full], minlength=len(index))
  expected = trials / len(index)
  chi2 = ((counts - expected) ** 2 / expected).sum()
  assert chi2 < 95.8  # 99.9% quantile of chi2 with 59 degrees of freedom.


def test_more_ranks_keep_a_uniform_ordered_sample_without_replacement():
  """distinct_ranks' 2 ranks, then 6 draws with replacement kept when new: the first 3 kept
  ranks are uniform over the 60 ordered triples of 5, repeats are never kept."""
  n, trials = 5, 30_000
  keys = jax.random.split(jax.random.key(6), trials)
  ranks, kept = map(np.asarray, jax.vmap(lambda key: fenwick.more_ranks(
      key, jnp.array([n, 1, 0], jnp.int32), 2, 8))(keys))
  assert not kept[:, 2].any() and (kept[:, 1].sum(1) == 1).all() and kept[:, 1, 0].all()
  rows = kept[:, 0].sum(1) >= 3
  assert rows.mean() > 0.9
  for r, k in zip(ranks[rows, 0], kept[rows, 0]):
    assert len(set(r[k])) == k.sum()
  triples = [tuple(r[k][:3]) for r, k in zip(ranks[rows, 0], kept[rows, 0])]
  index = {p: i for i, p in enumerate(itertools.permutations(range(n), 3))}
  counts = np.bincount([index[t] for t in triples], minlength=len(index))
  expected = len(triples) / len(index)
  chi2 = ((counts - expected) ** 2 / expected).sum()
  assert chi2 < scipy.stats.chi2.ppf(0.999, len(index) - 1)


def _sampler_inputs(lengths, page_slots, gen, p_used=0.3, p_test=0.2):
  """A packed layout of users with `lengths` rows, random test videos and used slots."""
  n_pages = -(-np.asarray(lengths) // page_slots)
  first, n_pages, rank = _layout(n_pages)
  video = np.full((n_pages.sum(), page_slots), -1, np.int32)
  for u, length in enumerate(lengths):
    flat = video[first[u]:first[u] + n_pages[u]].reshape(-1)
    flat[:length] = gen.integers(0, 1000, size=length)
    video[first[u]:first[u] + n_pages[u]] = flat.reshape(-1, page_slots)
  train_video = gen.random(1000) > p_test
  used = (gen.random(video.shape) < p_used) & (video >= 0)
  eligible = (video >= 0) & train_video[np.maximum(video, 0)] & ~used
  tree = fenwick.build(jnp.asarray(eligible.sum(1)[None].astype(np.int32)),
                            jnp.asarray(rank))
  return first, n_pages, video, train_video, used, eligible, tree


def test_every_rank_names_one_eligible_slot_at_27k_history_length():
  """A 120,000-row history (KuaiRand-27K's longest users): rank r is the r-th eligible slot
  in slot order, for every r, so uniform ranks are uniform slots."""
  gen = np.random.default_rng(1)
  first, n_pages, video, train_video, used, eligible, tree = _sampler_inputs(
      [120_000, 7], 32, gen)
  levels = fenwick.levels(int(n_pages.max()))
  want = np.flatnonzero(eligible[first[0]:first[0] + n_pages[0]].ravel())
  ranks = jnp.arange(len(want))
  local, within = fenwick.search(tree, 0, first[0], n_pages[0], ranks, levels)
  page = first[0] + np.asarray(local)
  ok = eligible[page]
  col = np.argmax(np.cumsum(ok, axis=1) > np.asarray(within)[:, None], axis=1)
  np.testing.assert_array_equal((page - first[0]) * 32 + col, want)


def test_candidates_are_uniform_among_eligible_slots_without_replacement():
  gen = np.random.default_rng(2)
  first, n_pages, video, train_video, used, eligible, tree = _sampler_inputs(
      [70, 3000, 0], 8, gen)
  levels = fenwick.levels(int(n_pages.max()))
  users = jnp.array([0, 1, 2], jnp.int32)
  k, trials = 4, 4000

  def one(key):
    return fenwick.candidates(tree, jnp.asarray(used), jnp.asarray(video),
                                   jnp.asarray(train_video), first, n_pages, users,
                                   jnp.zeros(3, jnp.int32), key, k, levels)

  page, col, vid, valid, n_eligible = jax.vmap(one)(jax.random.split(jax.random.key(3), trials))
  page, col, vid, valid = map(np.asarray, (page, col, vid, valid))
  n_user = [eligible[first[u]:first[u] + n_pages[u]].sum() for u in range(3)]
  np.testing.assert_array_equal(n_eligible[0], n_user)
  assert valid[:, :2].all() and not valid[:, 2].any()
  flat = page * 8 + col
  assert eligible.ravel()[flat[:, :2]].all()  # Only eligible slots...
  np.testing.assert_array_equal(vid[:, :2], video.ravel()[flat[:, :2]])
  assert all(len(set(r)) == k for r in flat[:, 0]) and all(len(set(r)) == k for r in flat[:, 1])
  slots0 = np.flatnonzero(eligible[first[0]:first[0] + n_pages[0]].ravel()) + first[0] * 8
  counts = np.array([(flat[:, 0] == s).sum() for s in slots0])
  expected = trials * k / len(slots0)
  chi2 = ((counts - expected) ** 2 / expected).sum()
  assert chi2 < scipy.stats.chi2.ppf(0.999, len(slots0) - 1)
  # The long history: the candidates' positions spread evenly over its deciles.
  slots1 = np.flatnonzero(eligible[first[1]:first[1] + n_pages[1]].ravel()) + first[1] * 8
  decile = np.searchsorted(slots1, flat[:, 1]) * 10 // len(slots1)
  counts = np.bincount(decile.ravel(), minlength=10)
  expected = trials * k / 10
  assert ((counts - expected) ** 2 / expected).sum() < 27.9  # chi2, 9 dof, 99.9%.


def test_a_release_filter_keeps_a_uniform_sample_of_the_released_eligible_slots():
  """Staggered release: n_draws ranks, the first k released slots kept. Only released,
  eligible, distinct slots, uniform among them (chi-squared), short only when fewer were
  drawn; the count is of the distinct released slots drawn."""
  gen = np.random.default_rng(4)
  first, n_pages, video, train_video, used, eligible, tree = _sampler_inputs(
      [90, 12, 0], 8, gen)
  levels = fenwick.levels(int(n_pages.max()))
  users = jnp.array([0, 1, 2], jnp.int32)
  released_video = gen.random(1000) < 0.6
  k, n_draws, trials = 4, 24, 4000

  def one(key):
    return fenwick.candidates(tree, jnp.asarray(used), jnp.asarray(video),
                              jnp.asarray(train_video), first, n_pages, users,
                              jnp.zeros(3, jnp.int32), key, k, levels,
                              released=lambda v: jnp.asarray(released_video)[v],
                              n_draws=n_draws)

  page, col, vid, valid, n_eligible = map(np.asarray, jax.vmap(one)(
      jax.random.split(jax.random.key(5), trials)))
  flat = page * 8 + col
  ok = eligible.ravel() & released_video[np.maximum(video, 0)].ravel()
  assert ok.ravel()[flat[valid]].all()
  np.testing.assert_array_equal(vid[valid], video.ravel()[flat[valid]])
  n_ok = [ok.reshape(video.shape)[first[u]:first[u] + n_pages[u]].sum() for u in range(3)]
  assert (n_eligible <= np.asarray(n_ok)).all() and (n_eligible[:, 1] == n_ok[1]).mean() > 0.5
  assert (valid.sum(2) == np.minimum(k, n_eligible)).all() and not valid[:, 2].any()
  assert (valid[:, 0].sum(1) < k).mean() < 0.01 and (n_eligible[:, 0] <= n_draws).all()
  rows = valid[:, 0].all(1)
  assert all(len(set(r)) == k for r in flat[rows, 0])
  slots0 = np.flatnonzero(ok.reshape(video.shape)[first[0]:first[0] + n_pages[0]].ravel())
  slots0 += first[0] * 8
  counts = np.array([(flat[rows, 0] == s).sum() for s in slots0])
  expected = rows.sum() * k / len(slots0)
  chi2 = ((counts - expected) ** 2 / expected).sum()
  assert chi2 < scipy.stats.chi2.ppf(0.999, len(slots0) - 1)
  first_draw = np.array([(flat[rows, 0, 0] == s).sum() for s in slots0])  # Order too.
  expected = rows.sum() / len(slots0)
  chi2 = ((first_draw - expected) ** 2 / expected).sum()
  assert chi2 < scipy.stats.chi2.ppf(0.999, len(slots0) - 1)
