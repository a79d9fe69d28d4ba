"""The model class "two_tower": a user tower and a video tower, scored by their dot product.

user tower: [user-ID embedding | user features] -> ReLU MLP (`tower_hidden`) -> `tower_dim`
outputs u and one more, the user's feature bias a_u; video tower likewise (v, a_v). Output =
<u, v> + a_u + a_v + the user's and the video's ID bias + a global bias (the head bias). Each
ID row holds the embedding and the ID bias ([id_dim + 1]). The feature biases carry what the
features say of a user's or a video's level alone (a new video's appeal), which a dot product
could only learn through a constant direction. When scoring a user's candidates, the user
tower runs once per user and the video tower once per candidate; nothing is computed per
(user, candidate) but the dot product.
"""

import dataclasses

import jax.numpy as jnp

from gtesim.models import ids as ids_lib
from gtesim.models import mlp
from gtesim.models.embedding import EmbeddingNet, drop_ids, dropout_keys

USER_SALT, VIDEO_SALT = 0x5EED0001, 0x5EED0002  # Hash keys of the two tables.


@dataclasses.dataclass(frozen=True)
class TwoTowerNet(EmbeddingNet):
  """See the module docstring."""
  tower_hidden: tuple = (64,)
  tower_dim: int = 32
  id_dim: int = 16
  dropout: float = 0.0
  id_budget: int = 0
  id_buckets: int = 1

  @property
  def tower(self) -> mlp.MLP:
    return mlp.MLP(self.tower_hidden, self.dropout, self.tower_dim + 1)  # u and a_u.

  def tables(self):
    self._need_dims()
    return {"user": ids_lib.IdTable.of(self.dims.n_users, self.id_budget, self.id_buckets,
                                       USER_SALT),
            "video": ids_lib.IdTable.of(self.dims.n_videos, self.id_budget, self.id_buckets,
                                        VIDEO_SALT)}

  def init(self, key, dims):
    del dims  # The net's own (its tables were sized on them).
    self._need_dims()
    d = self.dims
    ku, kv = dropout_keys(key, 2)
    dense = {"user_tower": self.tower.init(ku, jnp.zeros((1, self.id_dim + d.user_width))),
             "video_tower": self.tower.init(kv, jnp.zeros((1, self.id_dim + d.video_width))),
             "bias": jnp.zeros((), jnp.float32)}
    ids = {name: jnp.zeros((t.rows, self.id_dim + 1), jnp.float32)
           for name, t in self.tables().items()}
    return {"dense": dense, "ids": ids}

  def id_rows(self, pairs):
    tables = self.tables()
    return {"user": tables["user"].row_of(pairs.user),
            "video": tables["video"].row_of(pairs.video)}

  def _towers(self, dense, rows, pairs, train, key):
    ku, kv = dropout_keys(key, 2)
    rngs = lambda k: {"dropout": k} if train and self.dropout > 0 else None
    u = self.tower.apply(dense["user_tower"],
                         jnp.concatenate([rows["user"][..., :-1], pairs.user_x], axis=-1),
                         train=train, rngs=rngs(ku))
    v = self.tower.apply(dense["video_tower"],
                         jnp.concatenate([rows["video"][..., :-1], pairs.video_x], axis=-1),
                         train=train, rngs=rngs(kv))
    return u, v

  def apply_rows(self, dense, rows, pairs, train=False, key=None):
    k_ids, key = dropout_keys(key, 2)
    rows = drop_ids(rows, ("user", "video"), self.id_dropout, train, k_ids)
    u, v = self._towers(dense, rows, pairs, train, key)
    return (jnp.sum(u[..., :-1] * v[..., :-1], axis=-1) + u[..., -1] + v[..., -1]
            + rows["user"][..., -1] + rows["video"][..., -1] + dense["bias"])

  def score_gathered(self, dense, rows, pairs):
    u, v = self._towers(dense, rows, pairs, False, None)  # u [..., d + 1], v [..., k, d + 1]
    return (jnp.einsum("...d,...kd->...k", u[..., :-1], v[..., :-1]) + u[..., -1:]
            + v[..., -1]
            + rows["user"][..., -1:] + rows["video"][..., -1] + dense["bias"])

  def with_head(self, params, bias, zero_kernel: bool = False):
    """The global bias set to `bias` (and both towers' output layers zero: a constant)."""
    dense = {**params["dense"], "bias": jnp.full_like(params["dense"]["bias"], bias)}
    if zero_kernel:
      last = f"Dense_{len(self.tower_hidden)}"
      for name in ("user_tower", "video_tower"):
        tower = params["dense"][name]["params"]
        dense[name] = {"params": {**tower, last: {k: jnp.zeros_like(v)
                                                  for k, v in tower[last].items()}}}
    return {"dense": dense, "ids": params["ids"]}

  def flops(self, user_width: int, video_width: int, n_candidate: int) -> dict:
    user = mlp.mlp_flops(self.id_dim + user_width, self.tower_hidden, self.tower_dim + 1)
    video = mlp.mlp_flops(self.id_dim + video_width, self.tower_hidden, self.tower_dim + 1)
    dot = 2 * self.tower_dim
    return {"score_user": user + n_candidate * (video + dot), "row": user + video + dot}


def from_config(section, dims=None, video_only: bool = False) -> TwoTowerNet:
  del video_only  # Refused by the config check (config/checks.py).
  ids, tt = section.ids, section.two_tower
  return TwoTowerNet(dims, ids.learning_rate, ids.initial_accumulator, ids.eps, ids.dropout,
                     tuple(tt.tower_hidden), tt.tower_dim, tt.id_dim, section.dropout,
                     ids.budget, ids.buckets)
