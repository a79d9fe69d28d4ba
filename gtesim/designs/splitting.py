"""Splitting (data-diverted): each arm's models train on their own arm's users' items only."""

import dataclasses

import jax.numpy as jnp

from gtesim.designs.base import ABDesign


def own_arm_masks(z, rec_ok):
  """[2, b] masks of the step's items: treated users' for arm 0, control users' for arm 1."""
  ok = rec_ok.astype(jnp.float32)
  zf = z.astype(jnp.float32)
  return jnp.stack([ok * zf, ok * (1 - zf)])


@dataclasses.dataclass(frozen=True)
class Splitting(ABDesign):
  """Treatment models learn from Z = 1 data only, control models from Z = 0 data only."""

  def train_weights(self, spec, state, rep, point, pairs, z, rec_ok, key):
    mask = own_arm_masks(z, rec_ok)
    return state, mask, jnp.ones_like(mask), {}
