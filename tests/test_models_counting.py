"""The counting rankers' scores (gtesim/models/counting.py) against the page's dense
definitions (tests/choice_reference.py), without an I x I or U x U intermediate, and the
page's tie-break."""

import jax
import jax.numpy as jnp
import numpy as np

import choice_reference as ref
from gtesim.models import counting


def _x(gen, n_users=30, n_items=80):
  x = (gen.random((n_users, n_items)) < 0.1).astype(np.float32)
  x[:, 5] = 0  # A zero column: similarity 0.
  return x


def test_scores_equal_the_dense_definitions():
  gen = np.random.default_rng(0)
  x = _x(gen)
  users = np.array([0, 3, 3, 29, 7])
  items = gen.integers(0, 80, (5, 12))
  items[:, 0] = 5
  for fn, dense in ((counting.item_cf, ref.item_cf_scores), (counting.user_cf,
                                                              ref.user_cf_scores)):
    got = np.asarray(jax.jit(fn)(jnp.asarray(x), jnp.asarray(users), jnp.asarray(items)))
    want = dense(x.astype(np.float64))[users[:, None], items]
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-6)
    assert (got[:, 0] == 0).all()  # The zero column.


def test_no_intermediate_is_items_by_items_or_users_by_users():
  n_users, n_items, b, k = 30, 80, 5, 12  # All distinct, so a shape names its axes.
  args = (jnp.zeros((n_users, n_items)), jnp.zeros(b, jnp.int32), jnp.zeros((b, k), jnp.int32))
  for fn in (counting.item_cf, counting.user_cf):
    shapes = set()

    def walk(jaxpr):
      for eqn in jaxpr.eqns:
        shapes.update(tuple(v.aval.shape) for v in eqn.outvars)
        for sub in jax.core.jaxprs_in_params(eqn.params):
          walk(sub)

    walk(jax.make_jaxpr(fn)(*args).jaxpr)
    assert (n_items, n_items) not in shapes and (n_users, n_users) not in shapes, shapes
    # At most X's own size or the candidates' columns, O(U I + U b k); I^2 = 6,400 is above.
    assert max(int(np.prod(s)) for s in shapes) <= max(n_users * n_items, n_users * b * k)


def test_ranking_orders_by_score_then_by_noise_and_puts_minus_inf_last():
  score = jnp.array([[1.0, 3.0, 3.0, -jnp.inf, 0.0, -jnp.inf]])
  noise = jnp.array([[0.0, -1.0, 2.0, 5.0, 0.0, -5.0]])
  np.testing.assert_array_equal(counting.ranking(score, noise), [[2, 1, 0, 4, 3, 5]])
  gen = np.random.default_rng(1)
  s, z = gen.integers(0, 3, (4, 50)).astype(np.float32), gen.normal(size=(4, 50))
  got = np.asarray(counting.ranking(jnp.asarray(s), jnp.asarray(z, jnp.float32)))
  for row in range(4):
    assert list(got[row]) == sorted(range(50), key=lambda i: (-s[row, i], -z[row, i]))


def test_top_ranking_is_the_full_rankings_prefix_with_ties_and_minus_inf():
  gen = np.random.default_rng(2)
  score = gen.integers(0, 4, (64, 300)).astype(np.float32)  # Many ties at every score.
  score[:8, :295] = -np.inf  # Rows with fewer finite scores than k.
  score[8:16] = 0.0  # All tied (an empty matrix's scores).
  noise = gen.normal(size=(64, 300)).astype(np.float32)
  full = np.asarray(counting.ranking(jnp.asarray(score), jnp.asarray(noise)))
  for k in (1, 10, 40):
    top = np.asarray(jax.jit(counting.top_ranking, static_argnums=2)(
        jnp.asarray(score), jnp.asarray(noise), k))
    np.testing.assert_array_equal(top, full[:, :k])


def test_all_user_scores_and_the_shared_product_equal_the_dense_definitions():
  """item_cf_all / user_cf_all and the rankers' push-down equal the page's dense scores; one
  shared [U, U] x [U, I] product (pooled and diverted training matrices) equals each user's
  own arm's ranker."""
  gen = np.random.default_rng(3)
  x = _x(gen)
  x64 = x.astype(np.float64)
  np.testing.assert_allclose(np.asarray(counting.item_cf_all(jnp.asarray(x))),
                             ref.item_cf_scores(x64), rtol=2e-6, atol=1e-6)
  np.testing.assert_allclose(np.asarray(counting.user_cf_all(jnp.asarray(x))),
                             ref.user_cf_scores(x64), rtol=2e-6)
  item, user = counting.RANKERS.get("item_cf"), counting.RANKERS.get("user_cf")
  got = np.asarray(item.scores(jnp.asarray(x)))
  assert (got[x > 0] == -np.inf).all() and np.isfinite(got[x == 0]).all()
  utility = gen.random(x.shape).astype(np.float32)
  oracle = np.asarray(counting.RANKERS.get("oracle").scores(jnp.asarray(x), utility))
  np.testing.assert_array_equal(oracle, np.where(x > 0, -np.inf, utility))
  assert (np.asarray(counting.RANKERS.get("random").scores(jnp.asarray(x))) == 0).all()
  arm = jnp.asarray(gen.integers(0, 2, x.shape[0]))
  xj = jnp.asarray(x)
  for diverted in (False, True):
    xs = [xj * (arm == a)[:, None] if diverted else xj for a in (0, 1)]
    shared = np.asarray(counting.shared_scores((item, user), xs, xj, arm))
    own = np.where(np.asarray(arm)[:, None] == 0, np.asarray(item.scores(xs[0])),
                   np.asarray(user.scores(xs[1])))
    np.testing.assert_allclose(shared, own, rtol=1e-6)
    assert ((shared == -np.inf) == (own == -np.inf)).all()


def test_the_kept_gram_matrix_equals_the_product_after_every_update():
  """update_gram keeps X X^T exact through 40 rounds of consumption at a 300 x 2,000 scale
  (repeats, nothing consumed, two users on one item, an item consumed again), and user-CF's
  factors from it equal those from X."""
  gen = np.random.default_rng(5)
  n_users, n_items = 300, 2000
  x = jnp.zeros((n_users, n_items), jnp.float32)
  gram = jnp.zeros((n_users, n_users), jnp.float32)
  step = jax.jit(lambda g, x, item: (counting.update_gram(g, x, item), x.at[
      jnp.arange(n_users), jnp.maximum(item, 0)].max((item >= 0).astype(jnp.float32))))
  for _ in range(40):
    item = gen.integers(-1, 60, n_users).astype(np.int32)  # Few items: many repeats.
    gram, x = step(gram, x, jnp.asarray(item))
    np.testing.assert_array_equal(np.asarray(gram), np.asarray(x) @ np.asarray(x).T)
  for a, b in zip(counting.user_cf_factors(x, gram), counting.user_cf_factors(x)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
