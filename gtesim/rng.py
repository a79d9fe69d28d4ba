"""Explicit random keys: everything of repetition b derives from (seed, rep_offset + b)."""

import jax
import jax.numpy as jnp
import numpy as np

# One independent stream per purpose, so adding a use of randomness never shifts another.
_STREAMS = ("split", "pretrain_data", "init", "pretrain", "sim", "eval", "assign",
            "pretrain_weight")


def rep_key(seed: int, rep: int) -> jax.Array:
  """The root key of repetition `rep` (its absolute index, rep_offset included)."""
  return jax.random.fold_in(jax.random.key(seed), rep)


def stream(key: jax.Array, purpose: str) -> jax.Array:
  """The key of one purpose (see _STREAMS) within a repetition; `key` may be raw key data."""
  if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
    key = jax.random.wrap_key_data(key)
  return jax.random.fold_in(key, _STREAMS.index(purpose))


def numpy_rng(key: jax.Array) -> np.random.Generator:
  """A numpy generator seeded from a JAX key, for host-side set-up work."""
  return np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
