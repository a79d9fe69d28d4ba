"""A step's users and random keys (SPEC §4 step 1).

Keys depend on (repetition, replicate, step) only, never on the world, so the worlds of a repetition (GT
and GC, the points of a sweep) share user batches and candidate and outcome random numbers.
"""

import jax
import jax.numpy as jnp

from gtesim import prng


def _sim(rep):
  return jax.random.wrap_key_data(rep.sim_key)


def sample_users(spec, rep, t):
  """`batch_size` distinct train users: step t's slice of its epoch's random permutation (a
  keyed Feistel bijection, O(batch) work). An epoch is floor(n_train / batch) steps; the
  remaining users sit that epoch out.

  Returns (user indices [b], their positions among the train users [b]).
  """
  epoch, within = t // spec.steps_per_epoch, t % spec.steps_per_epoch
  pos = within * spec.batch_size + jnp.arange(spec.batch_size)
  key = jax.random.fold_in(jax.random.fold_in(_sim(rep), 0), epoch)
  position = prng.permute(pos, spec.n_train, key)
  return rep.train_users[position], position


def step_keys(rep, t):
  """(candidate, dropout, assignment, outcome, exploration) keys of step t, shared by all
  worlds of a repetition."""
  key = jax.random.fold_in(jax.random.fold_in(_sim(rep), 1), t)
  return tuple(jax.random.fold_in(key, i) for i in range(5))
