"""Label models (SPEC §3): one MLP per label, its loss, prediction and optimizer."""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax


class MLP(nn.Module):
  """ReLU MLP with one output; dropout on hidden layers while training."""
  hidden: tuple
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x, train: bool = False):
    for width in self.hidden:
      x = nn.relu(nn.Dense(width)(x))
      if self.dropout > 0:
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return nn.Dense(1)(x)[..., 0]


@dataclasses.dataclass(frozen=True)
class LabelModel:
  """A label's model: binary heads output logits, numerical heads log1p(y)."""
  name: str
  kind: str  # "binary" or "numerical".
  loss_name: str  # "bce", "logmae", "mse" or "mae".
  module: MLP
  optimizer: optax.GradientTransformation

  def init(self, key, width):
    return self.module.init(key, jnp.zeros((1, width), jnp.float32))

  def apply(self, params, x, train=False, key=None):
    rngs = {"dropout": key} if train and self.module.dropout > 0 else None
    return self.module.apply(params, x, train=train, rngs=rngs)

  def apply_pairs(self, params, xu, xv):
    """Outputs [..., k] of users xu [..., du] with their candidates xv [..., k, dv]: apply() of
    the concatenated features without building them, the first layer's user half computed
    once per user instead of once per candidate (scoring: no dropout)."""
    layers = params["params"]
    first = layers["Dense_0"]
    du = xu.shape[-1]
    h = (xu @ first["kernel"][:du])[..., None, :] + xv @ first["kernel"][du:] + first["bias"]
    for i in range(1, len(self.module.hidden) + 1):
      h = nn.relu(h) @ layers[f"Dense_{i}"]["kernel"] + layers[f"Dense_{i}"]["bias"]
    return h[..., 0]

  def predict(self, out):
    """Prediction on the label's scale: a probability, or expm1 of the log1p head."""
    return jax.nn.sigmoid(out) if self.kind == "binary" else jnp.expm1(out)

  def loss(self, out, y):
    """Per-row loss."""
    if self.loss_name == "bce":
      return optax.sigmoid_binary_cross_entropy(out, y)
    if self.loss_name == "logmae":
      return jnp.abs(out - jnp.log1p(y))
    if self.loss_name == "mse":
      return jnp.square(jnp.expm1(out) - y)
    return jnp.abs(jnp.expm1(out) - y)


def _model(config, name, kind, loss, mlp) -> LabelModel:
  optimizer = optax.chain(optax.clip_by_global_norm(config.optim.grad_clip),
                          optax.adamw(mlp.learning_rate, weight_decay=mlp.weight_decay))
  return LabelModel(name, kind, loss, MLP(tuple(mlp.hidden), mlp.dropout), optimizer)


def label_models(config) -> tuple:
  """LabelModels in config.labels order."""
  return tuple(_model(config, name, label.type, label.loss, label)
               for name, label in config.labels.items())


def weight_model(config) -> LabelModel:
  """G(x) ~ P(Z=1 | x): a binary model on the same features."""
  return _model(config, "weight", "binary", "bce", config.experiment.weight_model)


def weighted_loss(model: LabelModel, params, x, y, weight, n, key=None):
  """(1/n) * sum_i w_i * loss_i over rows i (w_i = 0 for rows that are not items).

  Args:
    model, params: the label model and its parameters.
    x, y: [n_rows, d] features and [n_rows] labels.
    weight: [n_rows] per-item weights (the design's; 0 masks a row out).
    n: the number of the step's recommended items (the 1/n of the loss).
    key: dropout key when training, None for a deterministic pass.
  """
  out = model.apply(params, x, train=key is not None, key=key)
  return jnp.sum(weight * model.loss(out, y)) / jnp.maximum(n, 1)
