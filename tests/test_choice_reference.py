"""The numpy rendering of the Brennan–Holtz page (tests/choice_reference.py) against the page's
definitions on small worlds (scores by their sums, the list, the choice, the warm-up), and the
compiled list and choice (gtesim/environments/choice.py) against it."""

import types

import jax.numpy as jnp
import numpy as np

import choice_reference as ref
from gtesim.data import choice_world
from gtesim.environments import choice


def _world(seed=0, n_users=12, n_items=60):
  return choice_world.generate(np.random.default_rng(seed), n_users, n_items, 5, 10.0, 1.0,
                               1e-5, 50.0)


def test_scores_equal_the_pages_sums():
  gen = np.random.default_rng(1)
  x = (gen.random((7, 9)) < 0.3).astype(float)
  x[:, 4] = 0  # A zero column: similarity 0.
  item, user = np.zeros((7, 9)), np.zeros((7, 9))
  for u in range(7):
    for i in range(9):
      for j in range(9):
        d = np.linalg.norm(x[:, i]) * np.linalg.norm(x[:, j])
        item[u, i] += (x[:, i] @ x[:, j] / d if d else 0.0) * x[u, j]
      user[u, i] = sum((x[u] @ x[v]) * x[v, i] for v in range(7) if v != u)
  np.testing.assert_allclose(ref.item_cf_scores(x), item)
  np.testing.assert_allclose(ref.user_cf_scores(x), user)


def test_interleave_and_choice_follow_the_page():
  np.testing.assert_array_equal(ref.interleave([1, 2, 3, 4], [10, 11]), [1, 10, 2, 11, 3, 4])
  np.testing.assert_array_equal(ref.interleave([1], [10, 11, 12]), [1, 10, 11, 12])
  utility = np.array([0.5, 0.9, 0.6])
  # Discounts 1, 2^-0.8 = 0.574, 3^-0.8 = 0.415: 0.5, 0.517, 0.249 -> item 1 at position 1.
  assert ref.choose(np.array([0, 1, 2]), utility, 0.4, 0.8) == 1
  assert ref.choose(np.array([0, 1, 2]), utility, 0.52, 0.8) == -1  # Below the reserve.
  assert ref.choose(np.array([], int), utility, 0.0, 0.8) == -1


def test_warm_up_consumes_only_new_items_and_the_rankers_order_as_defined():
  w = _world()
  gen = np.random.default_rng(2)
  noises = gen.normal(size=(8, 12, 60))
  orders = [[gen.permutation(5) for _ in range(12)] for _ in range(8)]
  take_up, consumed = ref.run(w, ("item_cf", "random"), np.arange(12) % 2, 8, 3, 5,
                              lambda t: noises[t], lambda t, u: orders[t][u])
  assert (take_up[:3] == 0).all()
  for t in range(3):  # Warm-up: only the period's new items are seen.
    c = consumed[t][consumed[t] >= 0]
    assert ((c >= 5 * t) & (c < 5 * (t + 1))).all()
  assert take_up[3:].sum() > 0  # Recommendations are taken up after the warm-up.
  # Oracle: unconsumed by utility, then consumed by noise; random: noise alone.
  x = np.zeros((12, 60))
  x[0, [1, 3]] = 1
  released = np.arange(60) < 10
  noise = noises[0]
  oracle = ref.ranked("oracle", 0, x, released, noise, w.utility)
  unconsumed = [i for i in range(10) if i not in (1, 3)]
  assert list(oracle[:8]) == sorted(unconsumed, key=lambda i: -w.utility[0, i])
  assert list(oracle[8:]) == sorted([1, 3], key=lambda i: -noise[0, i])
  assert list(ref.ranked("random", 0, x, released, noise, w.utility)) == sorted(
      range(10), key=lambda i: -noise[0, i])


def test_the_compiled_list_and_choice_equal_the_pages_rendering():
  """gtesim/environments/choice.py against choice_reference, user by user, with and without
  co-diverted visibility, before (no recommendations) and after the warm-up."""
  w = choice_world.generate(np.random.default_rng(5), 200, 400, 10, 10.0, 1.0, 1e-5, 50.0)
  gen = np.random.default_rng(6)
  utility = w.utility.astype(np.float32)
  reserve = w.reserve.astype(np.float32)
  for n_recs, visible_share in ((0, 1.0), (300, 1.0), (300, 0.5), (7, 0.5)):
    recs = np.stack([gen.permutation(390)[:max(n_recs, 1)] for _ in range(200)])
    new = 390 + np.stack([gen.permutation(10) for _ in range(200)])
    rec_ok = (gen.random(recs.shape) < visible_share) & (n_recs > 0)
    new_ok = gen.random(new.shape) < visible_share
    got, from_list, _ = choice.choose(jnp.asarray(recs), jnp.asarray(rec_ok),
                                      jnp.asarray(new), jnp.asarray(new_ok),
                                      jnp.asarray(utility), jnp.asarray(reserve), 0.8)
    got, from_list = np.asarray(got), np.asarray(from_list)
    for u in range(200):
      scan = ref.interleave(recs[u][rec_ok[u]], new[u][new_ok[u]])
      want = ref.choose(scan, utility[u].astype(np.float64), float(reserve[u]), 0.8)
      assert got[u] == want, (n_recs, visible_share, u)
      assert from_list[u] == (want >= 0 and want in set(recs[u][rec_ok[u]]))
    if n_recs == 0:
      assert not from_list.any()
    assert (got >= 0).mean() > 0.2  # Users do consume.


def test_a_kept_prefix_chooses_as_the_whole_list_where_the_guard_says_so_and_the_guard_fires():
  """The exactness guard of a top-k list: where it holds, the prefix's choice is the whole
  list's; a prefix too short for some user is caught (not exact there)."""
  w = choice_world.generate(np.random.default_rng(7), 300, 400, 10, 10.0, 1.0, 1e-5, 50.0)
  gen = np.random.default_rng(8)
  utility, reserve = jnp.asarray(w.utility, jnp.float32), jnp.asarray(w.reserve, jnp.float32)
  # Ranked lists with each user's best item sixth, after its five worst: a prefix of fewer
  # than 6 misses it.
  order = np.argsort(w.utility[:, :390], axis=1)  # Worst first.
  order = np.concatenate([order[:, :5], order[:, -1:], order[:, 5:-1]], 1)
  recs = jnp.asarray(order)
  new = jnp.asarray(390 + np.stack([gen.permutation(10) for _ in range(300)]))
  rec_ok, new_ok = jnp.ones(recs.shape, bool), jnp.ones(new.shape, bool)
  full, _, _ = choice.choose(recs, rec_ok, new, new_ok, utility, reserve, 0.8)
  n_recs = jnp.full(300, 390)
  caught = 0
  for k in (1, 4, 16, 64, 390):
    got, _, best = choice.choose(recs[:, :k], rec_ok[:, :k], new, new_ok, utility, reserve,
                                 0.8, n_recs=n_recs)
    exact = np.asarray(choice.prefix_is_exact(k, n_recs, jnp.full(300, 10),
                                              jnp.max(utility, -1), best, reserve, 0.8))
    differ = np.asarray(got) != np.asarray(full)
    assert not (differ & exact).any()  # Where the guard holds, the choice is the whole list's.
    caught += differ.sum()
    if k == 390:
      assert exact.all() and not differ.any()
  assert caught > 0  # Short prefixes did change some choices, and the guard flagged them.
