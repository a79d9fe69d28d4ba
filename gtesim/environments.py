"""Where a step's candidates and outcomes come from (`sim.environment`).

* `replay`: each user's logged items are the candidates, their logged labels the outcomes
  (packed pages, `step.candidates`); a user can run out of items.
* `matrix`: the same machinery on a fully observed matrix (KuaiRec's small matrix): every
  user's row holds (almost) every video, so the candidates are the catalogue's train videos the
  user has not been recommended yet. Refused when the environment logs are not dense.
* `latent` (synthetic data): the candidates are drawn from the whole catalogue of train videos
  and the outcomes from the latent model (`synthetic.sampled_outcomes`, or the exact
  expectation with `sim.outcome = "expected"`). Nothing of size users x videos exists: the
  memory of what a user was recommended is a [n_train, H] int32 array of video indices, one
  column per epoch of the user sampler (a user is sampled at most once per epoch), so
  H = ceil(n_steps / steps_per_epoch) and the array holds about n_steps x batch_size entries
  (27K-like, 2,000 steps x 256 users: 24,557 x 21 x 4 B = 2.1 MB per world).

Retrieval (`sim.retrieval`): candidates are drawn uniformly among the eligible items, or
without replacement with probability proportional to w_v = (rows of v in all loaded logs + 1)
** popularity_power. In packed environments, uniform draws come from slot_sampler.py's Fenwick
trees (window-free); weighted ones give every eligible slot of the user's window the key
log(u) / w_v and the top n_candidate keys win (Efraimidis-Spirakis); in `latent` the catalogue
is drawn `sim.candidate_draws` times from a two-level inverse CDF (blocks of ~sqrt(V) videos,
each level exact to 2^-24) and the first n_candidate distinct, unrecommended train videos are kept:
sequential draws with rejection, i.e. exactly uniform (or successive-sampling) without
replacement among the eligible videos. Every random number depends on (repetition, step,
user position or pair) only, never on the world: worlds share candidates wherever their
histories agree, and a pair recommended in two worlds at the same step gets the same outcome
draw (common random numbers; an A/A is exactly 0).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtri

from gtesim import rng
from gtesim.data import synthetic
from gtesim.errors import InputError

ENVIRONMENTS = ("replay", "matrix", "latent")
OUTCOMES = ("sampled", "expected")
RETRIEVALS = ("uniform", "popularity")
_LATENT_KEYS = ("taste", "bias", "topic", "appeal", "duration_ms", "click_offset")


def check(config, ds) -> None:
  """Refuses an environment the data cannot provide, naming the config key."""
  env = config.sim.environment
  if env == "matrix" and ds.overview["env_density"] < config.sim.matrix_min_density:
    raise InputError(
        f"sim.environment = 'matrix' needs a fully observed matrix, but the environment logs "
        f"({', '.join(config.data.logs)} in {ds.folder}) hold outcomes for only "
        f"{100 * ds.overview['env_density']:.1f}% of their {ds.overview['n_users']:,} users x "
        f"{ds.overview['n_videos']:,} videos (sim.matrix_min_density = "
        f"{config.sim.matrix_min_density}). Use 'replay' for sparse logs.")
  if env == "latent":
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
  if env != "latent" and config.sim.outcome != "sampled":
    raise InputError(f"sim.outcome = '{config.sim.outcome}' needs sim.environment = 'latent' "
                     "(replay and matrix outcomes are the logged ones).")


def history_slots(n_steps: int, steps_per_epoch: int) -> int:
  """H: columns of a user's recommendation memory in `latent` (one per sampler epoch)."""
  return max(1, math.ceil(n_steps / steps_per_epoch))


def video_weights(ds, config) -> np.ndarray:
  """[V] retrieval weight of each video (1 under uniform retrieval)."""
  if config.sim.retrieval == "uniform":
    return np.ones(len(ds.video_ids), np.float32)
  counts = np.bincount(ds.video, minlength=len(ds.video_ids)).astype(np.float64)
  return ((counts + 1) ** config.sim.popularity_power).astype(np.float32)


def two_level_cdf(weights: np.ndarray):
  """(block cdf [nb], within-block cdf [nb * bs]) of the normalized weights, blocks of
  bs = ceil(sqrt(V)) videos (padding has weight 0); float64 sums rounded once to float32."""
  w = np.asarray(weights, np.float64)
  bs = max(1, math.ceil(math.sqrt(len(w))))
  nb = -(-len(w) // bs)
  w = np.concatenate([w, np.zeros(nb * bs - len(w))]).reshape(nb, bs)
  block = w.sum(1)
  block_cdf = np.cumsum(block) / block.sum()
  block_cdf[-1] = 1.0
  within = np.cumsum(w, 1) / np.where(block > 0, block, 1)[:, None]
  within[:, -1] = 1.0
  return block_cdf.astype(np.float32), within.astype(np.float32).ravel()


def _search(cdf, u, lo, width: int):
  """First index j in [lo, lo + width) with cdf[j] > u (binary search, O(log width))."""
  hi = lo + width - 1
  for _ in range(math.ceil(math.log2(max(width, 2))) + 1):
    mid = (lo + hi) // 2
    right = cdf[mid] <= u
    lo, hi = jnp.where(right, mid + 1, lo), jnp.where(right, hi, mid)
  return jnp.minimum(lo, hi)


def draw_videos(block_cdf, within_cdf, u):
  """Video indices drawn from the two-level cdf by uniforms u [..., 2]."""
  nb = block_cdf.shape[0]
  bs = within_cdf.shape[0] // nb
  block = _search(block_cdf, u[..., 0], jnp.zeros(u.shape[:-1], jnp.int32), nb)
  return _search(within_cdf, u[..., 1], block * bs, bs)


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
  pair, so a pair gets the same numbers in every world at this (repetition, step)."""
  seeds = jax.random.bits(key, (n, 2), jnp.uint32)
  u = users.astype(jnp.uint32)[..., None]
  v = videos.astype(jnp.uint32)[..., None]
  h = rng.mix32(rng.mix32(rng.mix32(u ^ seeds[:, 0]) ^ v) + seeds[:, 1])
  return ((h >> 8).astype(jnp.float32) + 0.5) * jnp.float32(1.0 / (1 << 24))


def latent_outcomes(latent: dict, columns: tuple, expected: bool, users, videos, key):
  """[b, L] outcomes of pairs: the labels' columns of a latent draw (or expectation)."""
  if expected:
    out = synthetic.expected_outcomes(latent, users, videos, xp=jnp)
  else:
    u = pair_uniforms(key, users, videos, 3)
    out = synthetic.sampled_outcomes(latent, users, videos, u[..., :2], ndtri(u[..., 2]),
                                     xp=jnp)
  return jnp.stack([out[c].astype(jnp.float32) for c in columns], axis=-1)


def catalogue_candidates(n_candidate: int, n_draws: int, block_cdf, within_cdf, train_video,
                         recommended, uniforms, allowed=None):
  """Up to n_candidate distinct train videos per user, none already recommended to the user.

  Args:
    recommended: [b, H] videos recommended to each user so far (-1: none).
    uniforms: [b, n_draws, 2] U[0, 1) numbers.
    allowed: videos [b, M] -> bool [b, M], a further restriction (co-diverted), or None.

  Returns:
    (video [b, k], valid [b, k], n_eligible [b]: distinct eligible videos among the draws).
  """
  video = draw_videos(block_cdf, within_cdf, uniforms)  # [b, M]
  seen = jnp.any(video[:, :, None] == recommended[:, None, :], axis=-1)
  earlier = jnp.tril(jnp.ones((n_draws, n_draws), bool), k=-1)
  repeat = jnp.any((video[:, :, None] == video[:, None, :]) & earlier, axis=-1)
  ok = train_video[video] & ~seen & ~repeat
  if allowed is not None:
    ok &= allowed(video)
  rank, idx = jax.lax.top_k(jnp.where(ok, n_draws - jnp.arange(n_draws), 0), n_candidate)
  return jnp.take_along_axis(video, idx, axis=1), rank > 0, jnp.sum(ok, axis=1)
