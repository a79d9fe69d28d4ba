"""Candidates from a whole catalogue (environment `latent`): weighted draws with rejection.

The catalogue is drawn `sim.candidate_draws` times per user from a two-level inverse CDF
(blocks of ~sqrt(V) videos, each level exact to 2^-24), and the first n_candidate distinct,
unrecommended train videos are kept: sequential draws with rejection, i.e. exactly uniform
(or successive-sampling, under popularity weights) without replacement among the eligible
videos.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np


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
