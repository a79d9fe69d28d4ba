"""When videos enter the catalogue (`sim.release`): all at the start, or staggered.

"staggered": a share `sim.new_video_share` of each repetition's train videos is new. A new
video gets a release step drawn uniformly from [0, sim.n_steps) (per repetition, its own
random stream), is never a candidate before that step, and none of its logged rows is among
the pretraining rows: the production models have never seen it, and the ID models' row of
it (zero, models/ids.py) is learned only from the traffic the experiment sends it.
Environments that sample from the whole catalogue offer it (`Environment.offers_release`):
a release is then one more per-draw rejection, exact. Those that sample a user's own logged
slots through Fenwick trees (replay, matrix) do not: their trees count a user's eligible
slots, and releasing a video would have to add it to every user's tree that holds it
(O(users) per release), which the step's budget excludes; in replay a video outside a
user's log has no outcome to release anyway.
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
