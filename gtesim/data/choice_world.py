"""The Brennan–Holtz choice world (Brennan, Holtz et al., WWW 2025): tastes, items, utilities.

Users have K-dimensional tastes and items K-dimensional characteristics, both Dirichlet draws
concentrated on a corner of the simplex: each user picks one of `user_types` corners (drawn
without replacement among the K; all K by default) and draws Dirichlet(alpha) with alpha =
`gamma_pref` on that corner and 1 elsewhere; each item picks one of `item_types` corners (4 by
default) and draws Dirichlet with 0.01 * `gamma_item` on it and 0.01 elsewhere (nearly one-hot).
The utility of user u for item i is a Beta draw with mean mu = <taste_u, char_i> (clipped below
at 1e-9) and standard deviation `sigma`; u's reserve utility is the `reserve_percentile`
percentile of u's utilities over every item (numpy's linear interpolation: the median of an
even count is the mean of the two middle values). Generated once, on the host, from one
numpy Generator.
"""

import dataclasses

import numpy as np

from gtesim.errors import InputError

MIN_MEAN = 1e-9  # The utility mean's lower clip.
_ITEM_CONCENTRATION = 0.01  # Dirichlet alpha of an item's off-corner components.


@dataclasses.dataclass(frozen=True)
class ChoiceWorld:
  taste: np.ndarray  # [U, K] float64, rows on the simplex.
  user_type: np.ndarray  # [U] int: the corner each user's taste is concentrated on.
  char: np.ndarray  # [I, K] float64, rows on the simplex.
  item_type: np.ndarray  # [I] int: the corner each item is concentrated on.
  utility: np.ndarray  # [U, I] float64 in (0, 1).
  reserve: np.ndarray  # [U] float64: the utility a user needs to consume anything.


def beta_parameters(mean, sd: float):
  """(a, b) of the Beta distribution with this mean and standard deviation."""
  a = ((1 - mean) / sd ** 2 - 1 / mean) * mean ** 2
  return a, a * (1 / mean - 1)


def generate(gen: np.random.Generator, n_users: int, n_items: int, k: int, gamma_pref: float,
             gamma_item: float, sigma: float, reserve_percentile: float,
             user_types: int | None = None, item_types: int = 4,
             key_prefix: str = "choice") -> ChoiceWorld:
  """One world (see the module docstring); `key_prefix` names the config section in errors."""
  user_types = k if user_types is None else user_types
  for name, value, low in (("k", k, 1), ("user_types", user_types, 1),
                           ("item_types", item_types, 1)):
    if value < low or (name != "k" and value > k):
      raise InputError(f"config key {key_prefix}.{name} = {value}: must be in [1, "
                       f"{key_prefix}.k = {k}].")
  user_corners = gen.choice(k, user_types, replace=False)
  user_type = user_corners[gen.integers(user_types, size=n_users)]
  alpha = np.ones((n_users, k))
  alpha[np.arange(n_users), user_type] = gamma_pref
  taste = np.stack([gen.dirichlet(a) for a in alpha])
  item_corners = gen.choice(k, item_types, replace=False)
  item_type = item_corners[gen.integers(item_types, size=n_items)]
  alpha = np.full((n_items, k), _ITEM_CONCENTRATION)
  alpha[np.arange(n_items), item_type] = _ITEM_CONCENTRATION * gamma_item
  char = np.stack([gen.dirichlet(a) for a in alpha])
  mean = np.maximum(taste @ char.T, MIN_MEAN)
  a, b = beta_parameters(mean, sigma)
  if not ((a > 0) & (b > 0)).all():
    worst = float((mean * (1 - mean)).min())
    raise InputError(f"config key {key_prefix}.sigma = {sigma:g}: no Beta distribution has "
                     f"that standard deviation at every pair's mean (sigma^2 must be below "
                     f"mean (1 - mean), whose smallest value here is {worst:.3g}); lower it.")
  utility = gen.beta(a, b)
  reserve = np.percentile(utility, reserve_percentile, axis=1)
  return ChoiceWorld(taste, user_type, char, item_type, utility, reserve)
