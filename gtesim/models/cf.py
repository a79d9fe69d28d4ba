"""The model classes "item_cf" and "user_cf": memory-based collaborative filtering that learns
by counting consumption (Brennan, Holtz et al., WWW 2025; docs/replication.md), for gtesim's
own environments.

The state is the binary consumption matrix X [n_users, n_videos] (int8, 1 byte per user x
video) and nothing else: no gradients, no optimizer state. Learning sets X[u, v] = 1 for every
row a design trains on (weight > 0) whose label is positive (a click: "consumed"); pretraining
fills it from the logged rows the same way (one pass does it all; later epochs change nothing,
so early stopping keeps the first). The scores are the choice world's (models/counting.py):

- item_cf: score(u, v) = sum_j cos(v, j) x_uj, the cosine between video columns of X;
- user_cf: score(u, v) = sum_{w != u} (x_u . x_w) x_wv.

A class's outputs are ranking scores, not on the label's scale: `counts = True` makes the
label's prediction the score itself (a sigmoid would tie large scores at 1.0), so a ranking
that weights this label alone orders candidates exactly by the CF score. The label's loss and
AUC are still reported (the score read as a logit; the class does not minimise the loss, and
the AUC is the score's). Only binary labels: consumption is a yes or no. Scoring b users costs
O(b x n_users x n_videos) time (memory-based CF reads the whole matrix; docs/models.md) and
never forms a video x video or user x user matrix. A design that weights rows (weighting) is
refused: a count has no weight.
"""

import dataclasses
from typing import ClassVar, Optional

import jax.numpy as jnp

from gtesim.errors import GtesimError
from gtesim.models import counting
from gtesim.models.label_model import Dims

SCORES = {"item_cf": counting.item_cf, "user_cf": counting.user_cf}


@dataclasses.dataclass(frozen=True)
class CountingCFNet:
  """See the module docstring; `kind`: "item_cf" or "user_cf"."""
  dims: Optional[Dims]
  kind: str = "item_cf"
  counts: ClassVar[bool] = True  # Learns by counting; outputs are ranking scores.

  def _need_dims(self) -> Dims:
    if self.dims is None:
      raise GtesimError(f"the {self.kind} model was built without the dataset's sizes "
                        "(models.label_models(config, dims)).")
    return self.dims

  def init(self, key, dims):
    del key, dims  # No randomness; the net's own sizes.
    d = self._need_dims()
    return {"x": jnp.zeros((d.n_users, d.n_videos), jnp.int8)}

  @staticmethod
  def init_optimizer(params, optimizer):
    """No learning state beside X."""
    del params, optimizer
    return ()

  def _scores(self, x, users, videos):
    """Scores [...] of users [...] with videos [..., k] (or [...] for rows)."""
    rows = videos.ndim == users.ndim
    u = users.reshape(-1)
    v = videos.reshape(u.shape[0], -1)
    s = SCORES[self.kind](x.astype(jnp.float32), u, v)
    return s.reshape(videos.shape) if not rows else s.reshape(users.shape)

  def apply(self, params, pairs, train=False, key=None):
    """Scores [...] of rows of pairs."""
    del train, key
    return self._scores(params["x"], pairs.user, pairs.video)

  def score_pairs(self, params, pairs):
    """Scores [..., k] of users with their candidates."""
    return self._scores(params["x"], pairs.user, pairs.video)

  def update(self, params, opt_state, optimizer, loss_fn, pairs, y, weight, n, key):
    """X[u, v] = 1 for the trained rows (weight > 0) with a positive label: (params,
    opt_state, the weighted loss of the scores before it)."""
    del optimizer, key
    out = self.apply(params, pairs)
    loss = jnp.sum(weight * loss_fn(out, y)) / jnp.maximum(n, 1)
    consumed = ((weight > 0) & (y > 0)).astype(jnp.int8)
    x = params["x"].at[pairs.user.reshape(-1), pairs.video.reshape(-1)].max(
        consumed.reshape(-1))
    return {"x": x}, opt_state, loss

  @staticmethod
  def dense_of(params):
    """Nothing is stacked over blocks of users: the matrix is read where it lives (gather)."""
    del params
    return {}

  def gather(self, params, pairs) -> dict:
    """The pairs' scores, read from the whole matrix (memory-based: every user's row counts
    towards every score)."""
    return {"score": self.score_pairs(params, pairs)}

  @staticmethod
  def score_gathered(dense, rows, pairs):
    del dense, pairs
    return rows["score"]

  @staticmethod
  def with_head(params, bias, zero_kernel: bool = False):
    """No output bias: the scores are counts."""
    del bias, zero_kernel
    return params

  def flops(self, user_width: int, video_width: int, n_candidate: int) -> dict:
    """bench.py's FLOPs: one user's scores read the whole matrix (its [U, V] x [V] product
    and its candidates' columns), one training row likewise (the loss before the update)."""
    del user_width, video_width
    d = self._need_dims()
    one = 2 * d.n_users * d.n_videos + 2 * d.n_users * n_candidate
    return {"score_user": one, "row": 2 * d.n_users * d.n_videos + 2 * d.n_users}

  def describe(self) -> dict:
    """The consumption matrix: one row per user, one int8 column per video."""
    d = self._need_dims()
    return {"consumption": {"ids": d.n_users, "rows": d.n_users, "hashed": False,
                            "collision_rate": 0.0, "columns": d.n_videos}}


def from_config(kind: str):
  """The registry's constructor of one kind."""

  def build(section, dims=None, video_only: bool = False) -> CountingCFNet:
    del section, video_only  # No sizes of its own; G is refused by the config check.
    return CountingCFNet(dims, kind)

  return build
