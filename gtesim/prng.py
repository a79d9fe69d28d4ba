"""Explicit random keys: everything of repetition b derives from (seed, rep_offset + b)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

# One independent stream per purpose, so adding a use of randomness never shifts another.
_STREAMS = ("split", "pretrain_data", "init", "pretrain", "sim", "eval", "assign",
            "pretrain_weight", "assign_unit", "assign_video", "cluster", "release",
            "replicate")


SEEDS = 2 ** 32  # Seeds and absolute repetition indices lie in [0, SEEDS): there
# jax.random.key(seed) is the key data (0, seed) and fold_in(key, rep) folds rep as a uint32,
# both one-to-one; outside it they alias (2^40 is seed 0, -1 is 2^32 - 1), so checks refuse it.


def rep_key(seed: int, rep: int) -> jax.Array:
  """The root key of repetition `rep` (its absolute index, rep_offset included)."""
  return jax.random.fold_in(jax.random.key(seed), rep)


def stream(key: jax.Array, purpose: str) -> jax.Array:
  """The key of one purpose (see _STREAMS) within a repetition; `key` may be raw key data."""
  if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
    key = jax.random.wrap_key_data(key)
  return jax.random.fold_in(key, _STREAMS.index(purpose))


def sim_key(key: jax.Array, replicate: int = 0) -> jax.Array:
  """The key of a repetition's simulation draws (users, candidates, assignment, outcomes,
  exploration): the "sim" stream for replicate 0; replicate r >= 1 (a study's truth
  replicates, `sim.replicate`) draws them independently of it, from the same repetition's
  split, production model and release steps."""
  if replicate == 0:
    return stream(key, "sim")
  return jax.random.fold_in(stream(key, "replicate"), replicate)


def numpy_rng(key: jax.Array) -> np.random.Generator:
  """A numpy generator seeded from a JAX key, for host-side set-up work."""
  return np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())


def mix32(x):
  """A 32-bit integer mixer (a bijection of uint32; lowbias32)."""
  x = (x ^ (x >> 16)) * jnp.uint32(0x7FEB352D)
  x = (x ^ (x >> 15)) * jnp.uint32(0x846CA68B)
  return x ^ (x >> 16)


def permute(index, n: int, key):
  """A keyed pseudo-random bijection of [0, n) applied to `index` (4-round Feistel network
  on the next even power of two, cycle-walking back into range): O(len(index)) work.

  Every index must be in [0, n): cycle walking from outside the range need not end.
  """
  half = max(1, math.ceil(max(math.ceil(math.log2(max(n, 2))), 1) / 2))
  mask = jnp.uint32((1 << half) - 1)
  round_keys = jax.random.bits(key, (4,), jnp.uint32)

  def feistel(x):
    left, right = x >> half, x & mask
    for r in range(4):
      left, right = right, left ^ (mix32(right ^ round_keys[r]) & mask)
    return (left << half) | right

  out = lax.while_loop(lambda x: jnp.any(x >= n), lambda x: jnp.where(x >= n, feistel(x), x),
                       feistel(index.astype(jnp.uint32)))
  return out.astype(jnp.int32)


_UNIT = 1.0 / (1 << 24)  # The float32 spacing just below 1.


def half_open_unit(bits):
  """uint32 hash bits -> float32 in [0, 1): the top 24 bits k give k / 2^24, exactly (0 is a
  value, 1 never is). For inverse-CDF searches (`cdf > u`), where 0 is the first class."""
  return (bits >> 8).astype(jnp.float32) * jnp.float32(_UNIT)


def open_unit(bits):
  """uint32 hash bits -> float32 strictly inside (0, 1), for a quantile function (ndtri,
  log): (k + 1/2) / 2^24 of the top 24 bits k, rounded to float32, in [2^-25, 1 - 2^-24].

  (k + 1/2) / 2^24 rounds to exactly 1.0 for k = 2^24 - 1 (it lies halfway between
  1 - 2^-24 and 1, and ties go to the even 1.0), where ndtri is inf: that one value is
  clipped to 1 - 2^-24, every other one is unchanged.
  """
  u = ((bits >> 8).astype(jnp.float32) + jnp.float32(0.5)) * jnp.float32(_UNIT)
  return jnp.minimum(u, jnp.float32(1.0 - _UNIT))


def position_bits(key, shape):
  """uint32 hash bits, one per position of `shape`: a keyed bijection of the position (two
  rounds of a 32-bit mixer around a random key pair), so the bits of one key are distinct;
  ~4x cheaper than jax.random.bits."""
  seeds = jax.random.bits(key, (2,), jnp.uint32)
  position = jnp.arange(math.prod(shape), dtype=jnp.uint32).reshape(shape)
  return mix32(mix32(position ^ seeds[0]) + seeds[1])


def position_uniforms(key, shape):
  """Uniform [0, 1) float32 numbers, one per position of `shape` (`half_open_unit` of
  `position_bits`): the resolution of jax.random.uniform's float32."""
  return half_open_unit(position_bits(key, shape))
