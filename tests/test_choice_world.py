"""The Brennan–Holtz world's generator: its draws have the distributions the page defines."""

import numpy as np
import pytest

from gtesim.data import choice_world
from gtesim.errors import InputError


def _world(seed=0, **kw):
  args = dict(n_users=400, n_items=1000, k=10, gamma_pref=10.0, gamma_item=1.0, sigma=1e-5,
              reserve_percentile=50.0)
  args.update(kw)
  return choice_world.generate(np.random.default_rng(seed), **args)


def test_tastes_and_items_are_concentrated_dirichlet_draws():
  w = _world()
  np.testing.assert_allclose(w.taste.sum(1), 1, atol=1e-12)
  np.testing.assert_allclose(w.char.sum(1), 1, atol=1e-12)
  assert set(w.user_type) == set(range(10))  # All K corners are user types.
  assert len(set(w.item_type)) == 4
  # Dirichlet(gamma on the corner, 1 elsewhere): E[taste on the corner] = gamma / (gamma + K - 1),
  # Var = m (1 - m) / (gamma + K + 1).
  corner = w.taste[np.arange(len(w.taste)), w.user_type]
  m = 10 / 19
  assert abs(corner.mean() - m) < 4 * np.sqrt(m * (1 - m) / 21 / len(corner))
  # Items: alpha 0.01 everywhere at gamma_item = 1, so nearly one-hot on a random corner.
  assert np.median(w.char.max(1)) > 0.99
  # gamma_item = 1000 puts the mass on the item's own type corner.
  typed = _world(gamma_item=1000.0)
  assert (typed.char.argmax(1) == typed.item_type).mean() > 0.99


def test_utilities_are_their_means_within_sigma_and_the_reserve_is_the_median():
  w = _world()
  mean = np.maximum(w.taste @ w.char.T, choice_world.MIN_MEAN)
  dev = (w.utility - mean) / 1e-5
  assert np.abs(dev).max() < 7 and abs(dev.std() - 1) < 0.1  # sd sigma (near-normal Beta).
  assert ((w.utility > w.reserve[:, None]).sum(1) == 500).all()  # Even count: the mean of
  # the two middle values.
  a, b = choice_world.beta_parameters(np.array([0.2]), 0.05)
  np.testing.assert_allclose(a / (a + b), 0.2)
  np.testing.assert_allclose(np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1))), 0.05)


def test_the_world_is_a_function_of_its_generator_and_bad_sizes_are_refused():
  a, b = _world(seed=3), _world(seed=3)
  np.testing.assert_array_equal(a.utility, b.utility)
  assert not np.array_equal(a.utility, _world(seed=4).utility)
  with pytest.raises(InputError, match="choice.sigma"):
    _world(sigma=0.3)
  with pytest.raises(InputError, match="choice.item_types"):
    _world(item_types=11)
