"""Popularity-weighted candidates in packed environments: a scan of the user's window.

Every eligible slot (train video, not recommended in this world, allowed by the design) of
the user's pages gets the key log(u) / w_v and the top n_candidate keys win
(Efraimidis-Spirakis): a weighted draw without replacement, at O(batch x longest history)
per step. (Uniform draws come from the window-free Fenwick sampler instead.)
"""

import jax.numpy as jnp
from jax import lax

from gtesim import prng
from gtesim.data.packing import window_index


def window_candidates(spec, env, rep, used, users, key, video_weight, allowed=None):
  """Up to n_candidate slots per user among the eligible ones, weighted without replacement.

  Args:
    used: [P, C] bool, slots recommended in this world; users [b]; video_weight [V].
    allowed: videos [b, ...] -> bool [b, ...], the design's further restriction, or None.

  Returns (page [b, k], col [b, k], video [b, k], valid [b, k], n_eligible [b]).
  """
  static, logs = spec.static, env.logs
  pages, page_ok = window_index(logs.first_page, logs.n_pages, static.page_slots,
                                static.window_pages, users)
  pages = jnp.where(page_ok, pages, 0)
  video = logs.page_video[pages]
  eligible = (page_ok[..., None] & (video >= 0) & rep.train_video[jnp.maximum(video, 0)] &
              ~used[pages])
  if allowed is not None:
    eligible &= allowed(jnp.maximum(video, 0))
  b = users.shape[0]
  eligible = eligible.reshape(b, -1)
  weight = video_weight[jnp.maximum(video, 0)].reshape(b, -1)
  noise = jnp.log(prng.open_unit(prng.position_bits(key, eligible.shape))) / weight
  top, idx = lax.top_k(jnp.where(eligible, noise, -jnp.inf), spec.n_candidate)
  rows = jnp.arange(b)[:, None]
  page = pages[rows, idx // static.page_slots]
  col = idx % static.page_slots
  return page, col, video.reshape(b, -1)[rows, idx], top > -jnp.inf, jnp.sum(eligible, axis=1)
