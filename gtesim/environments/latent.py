"""`latent` (synthetic data only): candidates from the whole catalogue, outcomes from the
latent model.

The candidates are drawn from the whole catalogue of train videos (catalogue.py) and the
outcomes from the latent model (`synthetic.sampled_outcomes`, or the exact expectation with
`sim.outcome = "expected"`). Nothing of size users x videos exists: the memory of what a user
was recommended is a [n_train, H] int32 array of video indices, one column per epoch of the
user sampler (a user is sampled at most once per epoch), so H = ceil(n_steps /
steps_per_epoch) and the array holds about n_steps x batch_size entries (27K-like, 2,000
steps x 256 users: 24,557 x 21 x 4 B = 2.1 MB per world). Every random number depends on
(repetition, step, user position or pair) only, never on the world: a pair recommended in two
worlds at the same step gets the same outcome draw (common random numbers; an A/A is exactly
0).
"""

import dataclasses
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.scipy.special import ndtri

from gtesim import prng
from gtesim.data import synthetic
from gtesim.environments import catalogue
from gtesim.environments import release
from gtesim.environments import retrieval
from gtesim.environments.base import Candidates, Environment
from gtesim.errors import InputError, require


class LatentArrays(NamedTuple):
  block_cdf: jax.Array  # Two-level retrieval cdf (catalogue.two_level_cdf).
  within_cdf: jax.Array
  latent: dict  # The latent truth (latent_arrays).


@struct.dataclass
class Recommended:
  video: jax.Array  # [n_train, H] int32: the video recommended to each train user in each
  # epoch of the user sampler (-1: none).


def history_slots(n_steps: int, steps_per_epoch: int) -> int:
  """H: columns of a user's recommendation memory (one per sampler epoch)."""
  return max(1, math.ceil(n_steps / steps_per_epoch))


def latent_arrays(ds, folder) -> dict:
  """The latent truth (latent.npz) reindexed to the dataset's dense users and videos."""
  latent = synthetic.load_latent(folder)
  out = {}
  for ids, kind, keys in ((ds.user_ids, "user_ids", ("taste", "bias")),
                          (ds.video_ids, "video_ids", ("topic", "appeal", "duration_ms"))):
    known = latent[kind]
    order = np.argsort(known)
    pos = order[np.clip(np.searchsorted(known[order], ids), 0, len(known) - 1)]
    if not np.array_equal(known[pos], ids):
      raise InputError(f"{folder}/latent.npz does not cover the dataset's {kind[:-4]}s; "
                       "delete the folder to regenerate it.")
    out.update({k: latent[k][pos].astype(np.float32) for k in keys})
  out["click_offset"] = np.float32(latent["click_offset"])
  return out


def pair_uniforms(key, users, videos, n: int):
  """[..., n] U(0, 1) numbers of (user, video) pairs under a step's key: a keyed hash of the
  pair, so a pair gets the same numbers in every world at this (repetition, step); strictly
  inside (0, 1) in float32 (prng.open_unit), so ndtri of one is finite."""
  seeds = jax.random.bits(key, (n, 2), jnp.uint32)
  u = users.astype(jnp.uint32)[..., None]
  v = videos.astype(jnp.uint32)[..., None]
  return prng.open_unit(prng.mix32(prng.mix32(prng.mix32(u ^ seeds[:, 0]) ^ v) + seeds[:, 1]))


def latent_outcomes(latent: dict, columns: tuple, expected: bool, users, videos, key):
  """[b, L] outcomes of pairs: the labels' columns of a latent draw (or expectation)."""
  if expected:
    out = synthetic.expected_outcomes(latent, users, videos, xp=jnp)
  else:
    u = pair_uniforms(key, users, videos, 3)
    out = synthetic.sampled_outcomes(latent, users, videos, u[..., :2], ndtri(u[..., 2]),
                                     xp=jnp)
  return jnp.stack([out[c].astype(jnp.float32) for c in columns], axis=-1)


@dataclasses.dataclass(frozen=True)
class Latent(Environment):
  """See the module docstring."""
  columns: tuple = ()  # The outcome column of each label.
  expected: bool = False  # Outcomes are expectations, not draws.
  candidate_draws: int = 0  # Catalogue draws per user and step.
  history_slots: int = 1  # H, columns of the recommendation memory.
  outcomes = ("sampled", "expected")
  sampler = "catalogue"
  short_fix = "raise sim.candidate_draws"
  offers_release = True

  @classmethod
  def from_config(cls, config, static, n_train):
    sim = config.sim
    return cls(sim.environment, columns=tuple(config.labels[n].column for n in config.labels),
               expected=sim.outcome == "expected", candidate_draws=sim.candidate_draws,
               history_slots=history_slots(sim.n_steps, n_train // sim.batch_size))

  @classmethod
  def check_config(cls, config, active):
    require(config.sim.candidate_draws >= config.sim.n_candidate, "sim.candidate_draws",
            f"must be at least sim.n_candidate ({config.sim.n_candidate}).")

  @classmethod
  def check_data(cls, config, ds):
    if config.data.name != "synthetic":
      raise InputError(f"sim.environment = 'latent' needs the latent truth of the synthetic "
                       f"data (data.name = 'synthetic'), not data.name = '{config.data.name}'.")
    for name in config.labels:
      label = config.labels[name]
      if label.column not in synthetic.LATENT_COLUMNS or label.threshold is not None:
        raise InputError(
            f"config key labels.{name}: the latent model gives "
            f"{' and '.join(synthetic.LATENT_COLUMNS)} of any pair, not '{label.column}'"
            f"{' thresholded' if label.threshold is not None else ''}; use those labels "
            "with sim.environment = 'latent'.")

  @staticmethod
  def arrays(config, ds, packed):
    block_cdf, within_cdf = catalogue.two_level_cdf(retrieval.of(config).weights(config, ds))
    return LatentArrays(block_cdf, within_cdf, latent_arrays(ds, ds.folder))

  def init_memory(self, spec, env, rep, point):
    return Recommended(jnp.full((spec.n_train, self.history_slots), -1, jnp.int32))

  def candidates(self, ctx, allowed, released, key):
    arrays = ctx.env.environment
    allowed = release.combine(allowed, released)
    video, valid, n_eligible = catalogue.catalogue_candidates(
        ctx.spec.n_candidate, self.candidate_draws, arrays.block_cdf, arrays.within_cdf,
        ctx.rep.train_video, ctx.memory.video[ctx.position],
        prng.position_uniforms(key, (ctx.users.shape[0], self.candidate_draws, 2)), allowed)
    return Candidates(video, valid, n_eligible, ())

  def record(self, ctx, cand, choice, rec_ok, key):
    users = ctx.users
    rec_video = cand.video[jnp.arange(users.shape[0]), choice]
    y = latent_outcomes(ctx.env.environment.latent, self.columns, self.expected, users,
                        rec_video, key)
    video = ctx.memory.video.at[ctx.position, ctx.t // ctx.spec.steps_per_epoch].set(
        jnp.where(rec_ok, rec_video, -1))
    return y, Recommended(video)
