"""Training a label model on a set of rows: the weighted loss and its gradient."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gtesim.core import training
from gtesim.label_kinds import KINDS
from gtesim.models import Dims, LabelModel, Pairs
from gtesim.models.mlp import MLPNet


def _pairs(x):
  """Rows of pairs whose concatenated features are x [n, 3] (1 user column, 2 video)."""
  n = x.shape[0]
  return Pairs(x[:, :1], x[:, 1:], jnp.zeros(n, jnp.int32), jnp.zeros(n, jnp.int32),
               jnp.zeros((n, 0), jnp.int32), jnp.zeros((n, 0), jnp.int32))


def test_weighted_loss_gradient_matches_hand_computation():
  model = LabelModel("click", KINDS["binary"], "bce", MLPNet(hidden=()), optax.sgd(1.0))
  params = model.init(jax.random.key(0), Dims(1, 2))
  x = jnp.array([[1.0, 2.0, 0.5], [0.0, -1.0, 1.0], [3.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
  y = jnp.array([1.0, 0.0, 1.0, 0.0])
  w = jnp.array([2.0, 0.5, 0.0, 1.0])  # Row 2 is not an item (weight 0).
  n = 3
  grads = jax.grad(training.weighted_loss, argnums=1)(model, params, _pairs(x), y, w, n)
  kernel = params["params"]["Dense_0"]["kernel"][:, 0]
  bias = params["params"]["Dense_0"]["bias"][0]
  z = x @ kernel + bias
  residual = w * (jax.nn.sigmoid(z) - y) / n  # d/dz of (1/n) sum w * BCE.
  np.testing.assert_allclose(grads["params"]["Dense_0"]["kernel"][:, 0], x.T @ residual,
                             rtol=1e-5)
  np.testing.assert_allclose(grads["params"]["Dense_0"]["bias"][0], residual.sum(), rtol=1e-5)
  loss = training.weighted_loss(model, params, _pairs(x), y, w, n)
  manual = jnp.sum(w * optax.sigmoid_binary_cross_entropy(z, y)) / n
  np.testing.assert_allclose(loss, manual, rtol=1e-6)


def test_train_update_steps_every_model_and_reports_the_loss_before():
  models = tuple(LabelModel(f"y{i}", KINDS["numerical"], "logmae", MLPNet(hidden=(4,)),
                            optax.sgd(0.1)) for i in range(2))
  params = tuple(m.init(jax.random.key(i), Dims(1, 2)) for i, m in enumerate(models))
  opt = tuple(m.optimizer.init(p) for m, p in zip(models, params))
  x = jax.random.normal(jax.random.key(5), (16, 3))
  y = jnp.abs(jax.random.normal(jax.random.key(6), (16, 2))) * 10
  before = training.losses_only(models, params, _pairs(x), y, jnp.ones(16), 16)
  new, _, losses = training.train_update(models, params, opt, _pairs(x), y, jnp.ones(16), 16,
                                         jax.random.key(7), n_updates=3)
  np.testing.assert_allclose(losses, before, rtol=1e-6)
  after = training.losses_only(models, new, _pairs(x), y, jnp.ones(16), 16)
  assert (np.asarray(after) < np.asarray(before)).all()
