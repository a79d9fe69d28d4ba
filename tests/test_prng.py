"""Explicit random keys (gtesim/prng.py): the user permutation and the position uniforms."""

import jax
import jax.numpy as jnp
import numpy as np

from gtesim import prng


def test_permute_is_a_bijection():
  for n in (1, 2, 7, 64, 1000, 27285):
    out = np.asarray(prng.permute(jnp.arange(n), n, jax.random.key(n)))
    assert sorted(out) == list(range(n))
  a = np.asarray(prng.permute(jnp.arange(100), 100, jax.random.key(0)))
  b = np.asarray(prng.permute(jnp.arange(100), 100, jax.random.key(1)))
  assert not np.array_equal(a, b) and not np.array_equal(a, np.arange(100))


def test_permute_positions_are_uniform():
  n, trials = 10, 4000
  keys = jax.random.split(jax.random.key(0), trials)
  first = np.asarray(jax.vmap(lambda k: prng.permute(jnp.zeros(1, jnp.int32), n, k))(keys))
  counts = np.bincount(first.ravel(), minlength=n)
  expected = trials / n
  chi2 = ((counts - expected) ** 2 / expected).sum()
  assert chi2 < 27.9  # 99.9% quantile of chi2 with 9 degrees of freedom.


def test_position_uniforms_make_uniform_draws_without_replacement():
  """10 eligible slots of 40, the top 3 keys: each eligible slot is drawn with prob 3/10."""
  eligible = np.zeros((1, 40), bool)
  eligible[0, [1, 4, 5, 9, 17, 20, 21, 30, 33, 39]] = True
  trials = 3000
  keys = jax.random.split(jax.random.key(0), trials)
  def draw(key):
    noise = prng.position_uniforms(key, eligible.shape)
    top, idx = jax.lax.top_k(jnp.where(eligible, noise, -1.0), 3)
    return idx[0], top[0] >= 0
  idx, ok = jax.vmap(draw)(keys)
  assert bool(ok.all())
  counts = np.bincount(np.asarray(idx).ravel(), minlength=40)
  assert counts[~eligible[0]].sum() == 0
  assert all(len(set(row)) == 3 for row in np.asarray(idx))  # Without replacement.
  expected = trials * 3 / 10
  chi2 = ((counts[eligible[0]] - expected) ** 2 / expected).sum()
  assert chi2 < 27.9  # 99.9% quantile of chi2 with 9 degrees of freedom.
  noise = np.asarray(prng.position_uniforms(jax.random.key(1), (64, 512)))
  assert noise.min() >= 0 and noise.max() < 1 and abs(noise.mean() - 0.5) < 0.01


def test_streams_are_independent_and_raw_keys_name_the_same_stream():
  key = prng.rep_key(0, 3)
  raw = jax.random.key_data(key)
  a = jax.random.key_data(prng.stream(key, "sim"))
  np.testing.assert_array_equal(a, jax.random.key_data(prng.stream(raw, "sim")))
  assert not np.array_equal(a, jax.random.key_data(prng.stream(key, "assign")))
  assert not np.array_equal(a, jax.random.key_data(prng.stream(prng.rep_key(0, 4), "sim")))


def test_seeds_and_repetitions_map_one_to_one_onto_keys_up_to_the_range_edges():
  """Every valid seed and repetition index is its own key (the checks refuse the rest)."""
  edges = [0, 1, 2 ** 31 - 1, 2 ** 31, prng.SEEDS - 2, prng.SEEDS - 1]
  data = {s: tuple(np.asarray(jax.random.key_data(jax.random.key(s)))) for s in edges}
  assert len(set(data.values())) == len(edges)
  assert all(d == (0, s) for s, d in data.items())  # Valid seeds keep today's keys.
  reps = {tuple(np.asarray(jax.random.key_data(prng.rep_key(s, r))))
          for s in (0, prng.SEEDS - 1) for r in edges}
  assert len(reps) == 2 * len(edges)
