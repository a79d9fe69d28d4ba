"""The model class "wide_deep" (Cheng et al. 2016): a linear wide part plus the deep MLP.

wide: one weight per user ID, one per video ID and one per hashed cross of every user
categorical feature's value with every video categorical feature's value (`cross_buckets`
rows); deep: the "mlp" class over the pair's features. Output = deep + wide (the deep head's
bias is the global bias).
"""

import dataclasses

import jax.numpy as jnp

from gtesim.models import ids as ids_lib
from gtesim.models import mlp
from gtesim.models.embedding import EmbeddingNet, drop_ids, dropout_keys

USER_SALT, VIDEO_SALT, CROSS_SALT = 0x5EED0011, 0x5EED0012, 0x5EED0013


@dataclasses.dataclass(frozen=True)
class WideDeepNet(EmbeddingNet):
  """See the module docstring."""
  hidden: tuple = (128, 64)
  dropout: float = 0.0
  id_budget: int = 0
  id_buckets: int = 1
  cross_buckets: int = 1

  @property
  def deep(self) -> mlp.MLPNet:
    return mlp.MLPNet(self.hidden, self.dropout)

  def tables(self):
    self._need_dims()
    d = self.dims
    return {"user": ids_lib.IdTable.of(d.n_users, self.id_budget, self.id_buckets, USER_SALT),
            "video": ids_lib.IdTable.of(d.n_videos, self.id_budget, self.id_buckets,
                                        VIDEO_SALT),
            "cross": ids_lib.CrossTable(tuple(d.user_cat), tuple(d.video_cat),
                                        self.cross_buckets, CROSS_SALT)}

  def init(self, key, dims):
    del dims
    self._need_dims()
    ids = {name: jnp.zeros((t.rows, 1), jnp.float32) for name, t in self.tables().items()}
    return {"dense": {"deep": self.deep.init(key, self.dims)}, "ids": ids}

  def id_rows(self, pairs):
    tables = self.tables()
    user_cat = jnp.broadcast_to(pairs.user_cat[..., None, :] if pairs.video.ndim >
                                pairs.user.ndim else pairs.user_cat,
                                pairs.video.shape + pairs.user_cat.shape[-1:])
    return {"user": tables["user"].row_of(pairs.user),
            "video": tables["video"].row_of(pairs.video),
            "cross": ids_lib.cross_rows(user_cat, pairs.video_cat, self.cross_buckets,
                                        CROSS_SALT)}

  @staticmethod
  def _wide(rows):
    """The wide part per pair, with the user term broadcast over candidates by the caller."""
    return rows["video"][..., 0] + jnp.sum(rows["cross"][..., 0], axis=-1)

  def apply_rows(self, dense, rows, pairs, train=False, key=None):
    k_ids, key = dropout_keys(key, 2)
    rows = drop_ids(rows, ("user", "video"), self.id_dropout, train, k_ids)
    deep = self.deep.apply(dense["deep"], pairs, train=train, key=key)
    return deep + rows["user"][..., 0] + self._wide(rows)

  def score_gathered(self, dense, rows, pairs):
    deep = self.deep.score_pairs(dense["deep"], pairs)
    return deep + rows["user"][..., 0][..., None] + self._wide(rows)

  def with_head(self, params, bias, zero_kernel: bool = False):
    return {"dense": {"deep": self.deep.with_head(params["dense"]["deep"], bias, zero_kernel)},
            "ids": params["ids"]}

  def flops(self, user_width: int, video_width: int, n_candidate: int) -> dict:
    f = self.deep.flops(user_width, video_width, n_candidate)
    wide = 2 + len(self.dims.user_cat) * len(self.dims.video_cat) if self.dims else 2
    return {"score_user": f["score_user"] + n_candidate * wide, "row": f["row"] + wide}


def from_config(section, dims=None, video_only: bool = False) -> WideDeepNet:
  del video_only  # Refused by the config check (config/checks.py).
  ids, wd = section.ids, section.wide_deep
  return WideDeepNet(dims, ids.learning_rate, ids.initial_accumulator, ids.eps, ids.dropout,
                     tuple(wd.hidden), section.dropout, ids.budget, ids.buckets,
                     wd.cross_buckets)
