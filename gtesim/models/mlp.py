"""The model class "mlp" (SPEC §3): a ReLU MLP over the pair's dense features.

It has no parameter of its own for any user or video: what it knows of them is their
features. Its first layer's user half is computed once per user when scoring candidates.
"""

import dataclasses

import flax.linen as nn
import jax.numpy as jnp

from gtesim.models import gradient


class MLP(nn.Module):
  """ReLU MLP; dropout on hidden layers while training. One output ([...]) by default, or
  `outputs` of them ([..., outputs]: the two-tower ranker's towers)."""
  hidden: tuple
  dropout: float = 0.0
  outputs: int = 0  # 0: one output, squeezed.

  @nn.compact
  def __call__(self, x, train: bool = False):
    for width in self.hidden:
      x = nn.relu(nn.Dense(width)(x))
      if self.dropout > 0:
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
    if self.outputs:
      return nn.Dense(self.outputs)(x)
    return nn.Dense(1)(x)[..., 0]


def mlp_flops(width, hidden, outputs: int = 1) -> int:
  """Multiply-add FLOPs (2 per MAC) of one forward row through an MLP."""
  dims = (width,) + tuple(hidden) + (outputs,)
  return 2 * sum(a * b for a, b in zip(dims[:-1], dims[1:]))


@dataclasses.dataclass(frozen=True)
class MLPNet:
  """The "mlp" model class (see the module docstring); `video_only`: it sees the video
  features alone (the weight model G with experiment.weighting.features = "video")."""
  hidden: tuple
  dropout: float = 0.0
  video_only: bool = False

  @property
  def module(self) -> MLP:
    return MLP(self.hidden, self.dropout)

  def _x(self, pairs):
    """The MLP's input rows: [..., du + dv] (or [..., dv]) of rows of pairs."""
    if self.video_only:
      return pairs.video_x
    return jnp.concatenate([pairs.user_x, pairs.video_x], axis=-1)

  def init(self, key, dims):
    width = dims.video_width if self.video_only else dims.user_width + dims.video_width
    return self.module.init(key, jnp.zeros((1, width), jnp.float32))

  def apply(self, params, pairs, train=False, key=None):
    """Outputs [...] of rows of pairs (user_x and video_x of the same leading shape)."""
    rngs = {"dropout": key} if train and self.dropout > 0 else None
    return self.module.apply(params, self._x(pairs), train=train, rngs=rngs)

  def score_pairs(self, params, pairs):
    """Outputs [..., k] of users (user_x [..., du]) with their candidates (video_x
    [..., k, dv]): apply() of the concatenated features without building them, the first
    layer's user half once per user instead of once per candidate (scoring: no dropout)."""
    if self.video_only:
      return self.module.apply(params, pairs.video_x)
    layers = params["params"]
    first = layers["Dense_0"]
    xu, xv = pairs.user_x, pairs.video_x
    du = xu.shape[-1]
    h = (xu @ first["kernel"][:du])[..., None, :] + xv @ first["kernel"][du:] + first["bias"]
    for i in range(1, len(self.hidden) + 1):
      h = nn.relu(h) @ layers[f"Dense_{i}"]["kernel"] + layers[f"Dense_{i}"]["bias"]
    return h[..., 0]

  def init_optimizer(self, params, optimizer):
    """The optimizer state of every parameter (all dense)."""
    return optimizer.init(params)

  def update(self, params, opt_state, optimizer, loss_fn, pairs, y, weight, n, key):
    """One gradient update on rows of pairs: (params, opt_state, loss before it)."""
    return gradient.dense_update(self, optimizer, loss_fn, params, opt_state, pairs, y,
                                 weight, n, key)

  @staticmethod
  def dense_of(params):
    """The parameters per-arm scoring stacks over blocks: all of them."""
    return params

  @staticmethod
  def gather(params, pairs) -> dict:
    """The per-pair rows of the parameters: none (no ID tables)."""
    del params, pairs
    return {}

  def score_gathered(self, dense, rows, pairs):
    """score_pairs from `dense_of` and `gather` (per-arm scoring)."""
    del rows
    return self.score_pairs(dense, pairs)

  @staticmethod
  def describe() -> dict:
    """Its ID tables for run.log and result.json: none."""
    return {}

  def with_head(self, params, bias, zero_kernel: bool = False):
    """The parameters with the output layer's bias set to `bias` (and its kernel zero)."""
    last = f"Dense_{len(self.hidden)}"
    head = params["params"][last]
    if zero_kernel:
      head = {"kernel": jnp.zeros_like(head["kernel"]),
              "bias": jnp.full_like(head["bias"], bias)}
    else:
      head = {**head, "bias": jnp.full_like(head["bias"], bias)}
    return {"params": {**params["params"], last: head}}

  def flops(self, user_width: int, video_width: int, n_candidate: int) -> dict:
    """Model FLOPs bench.py counts: `score_user` (one user's n_candidate candidates, the
    first layer's user half once) and `row` (one forward row, as in training)."""
    hidden = tuple(self.hidden)
    width = video_width if self.video_only else user_width + video_width
    if not hidden:
      score = 2 * (user_width + n_candidate * video_width)
    else:
      score = (2 * user_width * hidden[0] + n_candidate * (
          2 * video_width * hidden[0] + mlp_flops(hidden[0], hidden[1:])))
    return {"score_user": score, "row": mlp_flops(width, hidden)}


def from_config(section, dims=None, video_only: bool = False) -> MLPNet:
  """The MLP of a label's (or the weight model's) config section."""
  del dims  # An MLP's sizes are its input widths, given to init.
  return MLPNet(tuple(section.mlp.hidden), section.dropout, video_only)
