"""A label's model: its kind (label_kinds), a model class (models registry), an optimizer."""

import dataclasses
from typing import NamedTuple

import jax
import optax

from gtesim.label_kinds import LabelKind


class Pairs(NamedTuple):
  """What a model sees of (user, video) pairs: their dense features, their indices and their
  raw categorical codes.

  Rows of pairs (training, evaluation) have user_x [..., du] and video_x [..., dv] of the
  same leading shape; a user's candidates (scoring) have user_x [..., du], user [...] and
  video_x [..., k, dv], video [..., k] (and user_cat [..., Cu], video_cat [..., k, Cv]).
  """
  user_x: jax.Array
  video_x: jax.Array
  user: jax.Array  # int32 user indices.
  video: jax.Array  # int32 video indices.
  user_cat: jax.Array  # [..., Cu] int32 codes of the user's categorical features.
  video_cat: jax.Array  # [..., Cv] int32 codes of the video's categorical features.


class Dims(NamedTuple):
  """The sizes a model class is built on (core.state.Static has them for a dataset)."""
  user_width: int  # Dense user feature width.
  video_width: int
  n_users: int = 1  # Users and videos of the dataset (ID tables).
  n_videos: int = 1
  user_cat: tuple = ()  # Code range of each categorical user (video) feature column
  video_cat: tuple = ()  # (encoding.Layout.cat_widths; Wide & Deep's crosses).


@dataclasses.dataclass(frozen=True)
class LabelModel:
  """One label's model: binary heads output logits, numerical heads log1p(y)."""
  name: str
  kind: LabelKind
  loss_name: str  # One of kind.losses.
  net: object  # A model class instance (models/__init__.py says what it provides).
  optimizer: optax.GradientTransformation  # Of the dense parameters (every parameter of
  # a class without ID tables).

  def init(self, key, dims: Dims):
    return self.net.init(key, dims)

  def init_optimizer(self, params):
    """The optimizer state: the dense parameters' (and the ID tables' accumulators)."""
    if not self.net.has_ids:
      return self.optimizer.init(params)
    return {"dense": self.optimizer.init(params["dense"]),
            "ids": self.net.init_accumulators(params["ids"])}

  def apply(self, params, pairs: Pairs, train=False, key=None):
    """Raw outputs (logits or log1p predictions) of rows of pairs."""
    return self.net.apply(params, pairs, train=train, key=key)

  def score_pairs(self, params, pairs: Pairs):
    """Raw outputs [..., k] of users' candidates (no dropout)."""
    return self.net.score_pairs(params, pairs)

  def dense_of(self, params):
    """The dense parameters (all of them without ID tables)."""
    return params["dense"] if self.net.has_ids else params

  def gather(self, params, pairs) -> dict:
    """The ID-table rows the pairs touch ({} without ID tables)."""
    return self.net.gather(params, pairs) if self.net.has_ids else {}

  def score_gathered(self, dense, rows: dict, pairs: Pairs):
    """score_pairs from the dense parameters and the gathered rows (per-arm scoring)."""
    if self.net.has_ids:
      return self.net.score_gathered(dense, rows, pairs)
    return self.net.score_pairs(dense, pairs)

  def predict(self, out):
    """Prediction on the label's scale (label_kinds)."""
    return self.kind.predict(out)

  def loss(self, out, y):
    """Per-row loss."""
    return self.kind.loss(self.loss_name, out, y)
