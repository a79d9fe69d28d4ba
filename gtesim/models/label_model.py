"""A label's model: its kind (label_kinds), a model class (models registry), an optimizer."""

import dataclasses
from typing import NamedTuple, Protocol

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


class ModelClass(Protocol):
  """What a model class provides (docs/extending.md): it owns its state and how it learns."""

  def init(self, key, dims: Dims): ...
  def init_optimizer(self, params, optimizer): ...
  def apply(self, params, pairs: Pairs, train: bool = False, key=None): ...
  def score_pairs(self, params, pairs: Pairs): ...
  def update(self, params, opt_state, optimizer, loss_fn, pairs: Pairs, y, weight, n, key): ...
  def dense_of(self, params): ...
  def gather(self, params, pairs: Pairs) -> dict: ...
  def score_gathered(self, dense, rows: dict, pairs: Pairs): ...
  def with_head(self, params, bias, zero_kernel: bool = False): ...
  def flops(self, user_width: int, video_width: int, n_candidate: int) -> dict: ...
  def describe(self) -> dict: ...
  counts: bool  # Optional (default False): it learns by counting and its outputs are
  # ranking scores, which the label's prediction passes through (models/cf.py).


@dataclasses.dataclass(frozen=True)
class LabelModel:
  """One label's model: a model class instance (`net`, which owns its state and how it
  learns), the label's kind and loss, and the optimizer the class may use. Binary heads
  output logits, numerical heads log1p(y). Nothing outside gtesim/models/ asks what kind of
  class it holds."""
  name: str
  kind: LabelKind
  loss_name: str  # One of kind.losses.
  net: ModelClass  # An instance of a registered model class.
  optimizer: optax.GradientTransformation  # Of the dense parameters, for classes that
  # learn by gradients.

  def init(self, key, dims: Dims):
    return self.net.init(key, dims)

  def init_optimizer(self, params):
    """The class's learning state beside its parameters (optimizer state, accumulators)."""
    return self.net.init_optimizer(params, self.optimizer)

  def update(self, params, opt_state, pairs: Pairs, y, weight, n, key):
    """One learning update on rows of pairs with per-row weights (0 masks a row out) and
    the loss's 1/n: (params, opt_state, weighted loss before the update)."""
    return self.net.update(params, opt_state, self.optimizer, self.loss, pairs, y, weight, n,
                           key)

  def apply(self, params, pairs: Pairs, train=False, key=None):
    """Raw outputs (logits or log1p predictions) of rows of pairs."""
    return self.net.apply(params, pairs, train=train, key=key)

  def score_pairs(self, params, pairs: Pairs):
    """Raw outputs [..., k] of users' candidates (no dropout)."""
    return self.net.score_pairs(params, pairs)

  def dense_of(self, params):
    """The parameters per-arm scoring may stack over blocks of users."""
    return self.net.dense_of(params)

  def gather(self, params, pairs) -> dict:
    """The per-pair parameter rows the pairs touch (ID-table rows; {} for a class without)."""
    return self.net.gather(params, pairs)

  def score_gathered(self, dense, rows: dict, pairs: Pairs):
    """score_pairs from `dense_of` and `gather` (per-arm scoring)."""
    return self.net.score_gathered(dense, rows, pairs)

  def with_head(self, params, bias, zero_kernel: bool = False):
    """The parameters with the output bias set to `bias` (and, zero_kernel, a constant)."""
    return self.net.with_head(params, bias, zero_kernel=zero_kernel)

  def flops(self, user_width: int, video_width: int, n_candidate: int) -> dict:
    """bench.py's FLOPs: {"score_user": one user's candidates, "row": one training row}."""
    return self.net.flops(user_width, video_width, n_candidate)

  def describe(self) -> dict:
    """The class's tables (sizes, hashing, collision rates) for run.log and result.json."""
    return self.net.describe()

  def predict(self, out):
    """Prediction on the label's scale (label_kinds); a counting class's score as it is (its
    outputs are not on the label's scale, and a sigmoid would tie large scores)."""
    return out if getattr(self.net, "counts", False) else self.kind.predict(out)

  def loss(self, out, y):
    """Per-row loss."""
    return self.kind.loss(self.loss_name, out, y)
