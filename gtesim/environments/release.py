"""When videos enter the catalogue (`sim.release`): all at the start, or staggered.

"staggered": a share `sim.new_video_share` of each repetition's train videos is new. A new
video gets a release step drawn uniformly from [0, sim.n_steps) (per repetition, its own
random stream), is never a candidate before that step, and none of its logged rows is among
the pretraining rows: the production models have never seen it, and the ID models' row of
it (zero, models/ids.py) is learned only from the traffic the experiment sends it.
Offered by `latent` and `matrix` (`Environment.offers_release`), exactly:
* latent: the catalogue sampler rejects an unreleased video among its `sim.candidate_draws`
  draws, as it rejects a recommended one.
* matrix, uniform retrieval: the Fenwick trees count each user's eligible slots, released or
  not (counting only released ones would mean adding a video to every user's tree at its
  release, O(users) per release, beyond a step's budget). The sampler draws
  `sim.candidate_draws` distinct ranks instead of n_candidate and keeps the first n_candidate
  released slots (environments/fenwick.py): a filter of a uniform ordered sample is a uniform
  ordered sample of the released slots. A user with fewer among the draws is counted short.
* matrix, popularity retrieval: the window scan applies the filter to every slot.
`replay` does not offer it: its candidates are the impressions the logging policy made of
videos already published at the log's dates, so a drawn release step would hide items the log
shows available; releasing by the log's own dates needs a map from log time to simulation
steps, which replay does not have (its steps are draws of users, not days).
"""

import numpy as np

from gtesim import prng

MODES = ("all", "staggered")


def draw(config, train_video: np.ndarray, key):
  """One repetition's (release step [V] int32, 0 unless new; new [V] bool)."""
  sim = config.sim
  release = np.zeros(train_video.shape, np.int32)
  new = np.zeros(train_video.shape, bool)
  if sim.release == "all":
    return release, new
  candidates = np.flatnonzero(train_video)
  n_new = int(round(sim.new_video_share * len(candidates)))
  gen = prng.numpy_rng(prng.stream(key, "release"))
  chosen = gen.choice(candidates, n_new, replace=False)
  new[chosen] = True  # A new video may draw step 0: still never seen in pretraining.
  release[chosen] = gen.integers(0, sim.n_steps, n_new)
  return release, new


def allowed(rep, t):
  """videos -> bool: released by step t."""
  return lambda videos: rep.release[videos] <= t


def combine(allowed_videos, released):
  """One video filter of two (either may be None)."""
  if allowed_videos is None or released is None:
    return released if allowed_videos is None else allowed_videos
  return lambda videos: allowed_videos(videos) & released(videos)
