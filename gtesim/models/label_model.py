"""A label's model: its kind (label_kinds), a model class (models registry), an optimizer."""

import dataclasses
from typing import NamedTuple

import jax
import optax

from gtesim.label_kinds import LabelKind


class Pairs(NamedTuple):
  """What a model sees of (user, video) pairs: their dense features and their indices.

  Rows of pairs (training, evaluation) have user_x [..., du] and video_x [..., dv] of the
  same leading shape; a user's candidates (scoring) have user_x [..., du], user [...] and
  video_x [..., k, dv], video [..., k].
  """
  user_x: jax.Array
  video_x: jax.Array
  user: jax.Array  # int32 user indices.
  video: jax.Array  # int32 video indices.


@dataclasses.dataclass(frozen=True)
class LabelModel:
  """One label's model: binary heads output logits, numerical heads log1p(y)."""
  name: str
  kind: LabelKind
  loss_name: str  # One of kind.losses.
  net: object  # A model class instance (init, apply, score_pairs, with_head, flops).
  optimizer: optax.GradientTransformation

  def init(self, key, user_width: int, video_width: int):
    return self.net.init(key, user_width, video_width)

  def apply(self, params, pairs: Pairs, train=False, key=None):
    """Raw outputs (logits or log1p predictions) of rows of pairs."""
    return self.net.apply(params, pairs, train=train, key=key)

  def score_pairs(self, params, pairs: Pairs):
    """Raw outputs [..., k] of users' candidates (no dropout)."""
    return self.net.score_pairs(params, pairs)

  def predict(self, out):
    """Prediction on the label's scale (label_kinds)."""
    return self.kind.predict(out)

  def loss(self, out, y):
    """Per-row loss."""
    return self.kind.loss(self.loss_name, out, y)
