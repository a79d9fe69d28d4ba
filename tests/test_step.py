"""Pieces of the compiled step: user permutation, candidate sampling, weighted loss."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gtesim import models, rng, step


def test_permute_is_a_bijection():
  for n in (1, 2, 7, 64, 1000, 27285):
    out = np.asarray(rng.permute(jnp.arange(n), n, jax.random.key(n)))
    assert sorted(out) == list(range(n))
  a = np.asarray(rng.permute(jnp.arange(100), 100, jax.random.key(0)))
  b = np.asarray(rng.permute(jnp.arange(100), 100, jax.random.key(1)))
  assert not np.array_equal(a, b) and not np.array_equal(a, np.arange(100))


def test_permute_positions_are_uniform():
  n, trials = 10, 4000
  keys = jax.random.split(jax.random.key(0), trials)
  first = np.asarray(jax.vmap(lambda k: rng.permute(jnp.zeros(1, jnp.int32), n, k))(keys))
  counts = np.bincount(first.ravel(), minlength=n)
  expected = trials / n
  chi2 = ((counts - expected) ** 2 / expected).sum()
  assert chi2 < 27.9  # 99.9% quantile of chi2 with 9 degrees of freedom.


def test_weighted_loss_gradient_matches_hand_computation():
  model = models.LabelModel("click", "binary", "bce", models.MLP(hidden=()), optax.sgd(1.0))
  params = model.init(jax.random.key(0), 3)
  x = jnp.array([[1.0, 2.0, 0.5], [0.0, -1.0, 1.0], [3.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
  y = jnp.array([1.0, 0.0, 1.0, 0.0])
  w = jnp.array([2.0, 0.5, 0.0, 1.0])  # Row 2 is not an item (weight 0).
  n = 3
  grads = jax.grad(models.weighted_loss, argnums=1)(model, params, x, y, w, n)
  kernel = params["params"]["Dense_0"]["kernel"][:, 0]
  bias = params["params"]["Dense_0"]["bias"][0]
  z = x @ kernel + bias
  residual = w * (jax.nn.sigmoid(z) - y) / n  # d/dz of (1/n) sum w * BCE.
  np.testing.assert_allclose(grads["params"]["Dense_0"]["kernel"][:, 0], x.T @ residual,
                             rtol=1e-5)
  np.testing.assert_allclose(grads["params"]["Dense_0"]["bias"][0], residual.sum(), rtol=1e-5)
  loss = models.weighted_loss(model, params, x, y, w, n)
  manual = jnp.sum(w * optax.sigmoid_binary_cross_entropy(z, y)) / n
  np.testing.assert_allclose(loss, manual, rtol=1e-6)


def test_numerical_losses():
  model = models.LabelModel("t", "numerical", "logmae", models.MLP(hidden=()), optax.sgd(1.0))
  out = jnp.log1p(jnp.array([9.0, 0.0]))
  y = jnp.array([99.0, 0.0])
  np.testing.assert_allclose(model.loss(out, y), [np.log(100) - np.log(10), 0.0], rtol=1e-6)
  np.testing.assert_allclose(model.predict(out), [9.0, 0.0], rtol=1e-6)


def test_candidates_are_uniform_among_eligible_slots():
  """10 eligible slots of 40, 3 candidates: each eligible slot is drawn with prob 3/10."""
  eligible = np.zeros((1, 40), bool)
  eligible[0, [1, 4, 5, 9, 17, 20, 21, 30, 33, 39]] = True
  trials = 3000
  keys = jax.random.split(jax.random.key(0), trials)
  def draw(key):
    noise = step.slot_noise(key, eligible.shape)
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
  noise = np.asarray(step.slot_noise(jax.random.key(1), (64, 512)))
  assert noise.min() >= 0 and noise.max() < 1 and abs(noise.mean() - 0.5) < 0.01
