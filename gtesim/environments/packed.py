"""Environments over the packed logs (`replay`, `matrix`): candidates are logged slots.

A world's memory is the used mask [P, C] over the packed pages (slots recommended in this
world). Uniform retrieval draws from the Fenwick trees of eligible slots per page (fenwick.py,
window-free; one tree per video class of the design), popularity-weighted retrieval scans the
user's window (window.py). The outcome of a recommendation is the slot's logged labels.
"""

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from gtesim.environments import fenwick
from gtesim.environments import release
from gtesim.environments import retrieval
from gtesim.environments.base import Candidates, Environment
from gtesim.environments.window import window_candidates
from gtesim.errors import require


class FenwickArrays(NamedTuple):
  page_rank: jax.Array  # [P_env] int32: each environment page's index among its user's pages.


class WindowArrays(NamedTuple):
  video_weight: jax.Array  # [V] float32 retrieval weights (retrieval.py).


@struct.dataclass
class FenwickMemory:
  used: jax.Array  # [P, C] bool: slots recommended in this world.
  tree: jax.Array  # [K, P] int32 Fenwick trees of each page's eligible unused slots, per
  # video class.


@struct.dataclass
class SlotMemory:
  used: jax.Array  # [P, C] bool: slots recommended in this world.


def eligible_counts(spec, env, rep, point):
  """[K, P] eligible slots of each environment page per video class, before any
  recommendation: filled slots holding a train video (of the class: designs' video_classes)."""
  video = env.logs.page_video[:spec.static.n_pages]
  ok = (video >= 0) & rep.train_video[jnp.maximum(video, 0)]
  classes = spec.design.exposure.video_classes(rep, point, jnp.maximum(video, 0))
  if classes is None:
    return jnp.sum(ok, axis=1, dtype=jnp.int32)[None]
  return jnp.stack([jnp.sum(ok & c, axis=1, dtype=jnp.int32) for c in classes])


def _mark_used(used, rec_page, rec_col, rec_ok):
  return used.at[jnp.where(rec_ok, rec_page, used.shape[0]), rec_col].set(True, mode="drop")


@dataclasses.dataclass(frozen=True)
class PackedEnvironment(Environment):
  """See the module docstring; `weighted`: popularity retrieval (the window scan)."""
  weighted: bool = False
  tree_levels: int = 1  # Iterations of a Fenwick descent or update (the longest user's pages).
  release_draws: int = 0  # Staggered release with the Fenwick sampler: ranks drawn per user
  # and step, among which the first n_candidate released slots are the candidates.
  short_fix = ("the logs hold too few items per user for this horizon; use a shorter "
               "sim.n_steps or a counterfactual environment (sim.environment)")

  @property
  def sampler(self) -> str:
    return "window" if self.weighted else "fenwick"

  @classmethod
  def from_config(cls, config, static, n_train):
    del n_train
    sim = config.sim
    return cls(sim.environment, weighted=retrieval.of(config).weighted,
               tree_levels=fenwick.levels(static.window_pages),
               release_draws=sim.candidate_draws if sim.release == "staggered" else 0)

  @classmethod
  def short_advice(cls, config):
    if config.sim.release == "staggered" and not retrieval.of(config).weighted:
      return (cls.short_fix + "; with staggered release the Fenwick sampler rejects "
              "unreleased slots among sim.candidate_draws draws: raise it")
    return cls.short_fix

  @classmethod
  def check_config(cls, config, active):
    sim = config.sim
    if active and sim.release == "staggered" and not retrieval.of(config).weighted:
      require(sim.candidate_draws >= sim.n_candidate, "sim.candidate_draws",
              f"must be at least sim.n_candidate ({sim.n_candidate}): with staggered release "
              "the Fenwick sampler draws that many slots and keeps the first n_candidate "
              "released ones.")

  @staticmethod
  def arrays(config, ds, packed):
    if retrieval.of(config).weighted:
      return WindowArrays(retrieval.of(config).weights(config, ds))
    owner = packed.owner[:packed.n_env_pages]
    return FenwickArrays((np.arange(packed.n_env_pages) -
                          packed.first_page[owner]).astype(np.int32))

  def log_setup(self, log, packed):
    if self.weighted:
      log.info("popularity retrieval scans each sampled user's whole history (%s slots for "
               "the longest): a step costs O(batch x %s); data.max_history bounds it (uniform "
               "retrieval costs the same at any length)", f"{packed.window:,}",
               f"{packed.window:,}")

  def init_memory(self, spec, env, rep, point):
    used = jnp.zeros((spec.static.n_pages, spec.static.page_slots), bool)
    if self.weighted:
      return SlotMemory(used)
    return FenwickMemory(used, fenwick.build(eligible_counts(spec, env, rep, point),
                                             env.environment.page_rank))

  def candidates(self, ctx, allowed, released, key):
    spec, env, rep, memory, users = ctx.spec, ctx.env, ctx.rep, ctx.memory, ctx.users
    if self.weighted:
      page, col, video, valid, n_eligible = window_candidates(
          spec, env, rep, memory.used, users, key, env.environment.video_weight,
          release.combine(allowed, released))
    else:
      logs = env.logs
      page, col, video, valid, n_eligible = fenwick.candidates(
          memory.tree, memory.used, logs.page_video, rep.train_video, logs.first_page,
          logs.n_pages, users, ctx.cls, key, spec.n_candidate, self.tree_levels, allowed,
          released, self.release_draws)
    return Candidates(video, valid, n_eligible, (page, col))

  def record(self, ctx, cand, choice, rec_ok, key):
    env, memory, users = ctx.env, ctx.memory, ctx.users
    rows = jnp.arange(users.shape[0])
    page, col = cand.slot
    rec_page, rec_col = page[rows, choice], col[rows, choice]
    y = env.logs.page_labels[rec_page, rec_col]
    used = _mark_used(memory.used, rec_page, rec_col, rec_ok)
    if self.weighted:
      return y, SlotMemory(used)
    base = env.logs.first_page[users]
    tree = fenwick.decrement(memory.tree, ctx.cls, base, env.logs.n_pages[users], rec_page - base,
                             rec_ok, self.tree_levels)
    return y, FenwickMemory(used, tree)
