"""The label kinds (SPEC §3): one table entry per kind, everything that differs by kind.

A kind says how its labels' models are trained (losses), what they predict, how they are
validated and drawn, what the overview reports of them and which values the loader accepts.
Adding a kind is one class here and one entry in KINDS (docs/extending.md).
"""

import dataclasses

import jax
import jax.numpy as jnp
import optax
import pyarrow as pa
import pyarrow.compute as pc

from gtesim import metrics


@dataclasses.dataclass(frozen=True)
class LabelKind:
  """What a kind of label is: see the module docstring. Subclasses fill every method."""
  name: str
  losses: tuple  # The losses a label of this kind may use (`labels.<name>.loss`).
  metric: str  # The validation metric's name ("<label>/<metric>" in metrics.parquet).
  strictness: int  # A log column read by labels of several kinds gets the least strict check.

  def loss(self, loss_name: str, out, y):
    """Per-row loss of model outputs `out` against labels `y`."""
    raise NotImplementedError

  def predict(self, out):
    """The prediction on the label's scale (what the ranking score weights by alpha)."""
    raise NotImplementedError

  def validation_metric(self, out, y, mask):
    """The kind's validation metric over the rows where `mask` (jit-able)."""
    raise NotImplementedError

  def head_bias(self, y):
    """The output bias a fresh model of this label starts with (y: the pretraining rows'
    labels), or None for the module's own initialisation."""
    return None

  def stat_key(self, name: str) -> str:
    """The dataset overview's key of this label's rate or mean."""
    raise NotImplementedError

  def panel(self, name: str, label) -> tuple:
    """(title, y-axis label, metric key) of the label's metric panel in figure.png."""
    raise NotImplementedError

  def value_checks(self, values: pa.ChunkedArray) -> list:
    """[(bad rows (pyarrow bool), what is wrong, the rule)] of a log column's values, beyond
    being finite."""
    raise NotImplementedError


class Binary(LabelKind):
  """0/1 labels: BCE on logits, prediction = probability, validated by AUC."""

  def loss(self, loss_name, out, y):
    del loss_name  # "bce" only.
    return optax.sigmoid_binary_cross_entropy(out, y)

  def predict(self, out):
    return jax.nn.sigmoid(out)

  def validation_metric(self, out, y, mask):
    return metrics.auc(out, y, mask)

  def stat_key(self, name):
    return f"{name}_rate"

  def panel(self, name, label):
    return (f"{name} AUC", "AUC", f"{name}/{self.metric}")

  def value_checks(self, values):
    return [(pc.invert(pc.is_in(values, pa.array([0.0, 1.0], pa.float32()))),
             "value(s) other than 0 and 1", "A binary label must be 0 or 1")]


class Numerical(LabelKind):
  """Labels >= 0 whose model predicts log1p(y); validated by the relative error on y > 0."""

  def loss(self, loss_name, out, y):
    if loss_name == "logmae":
      return jnp.abs(out - jnp.log1p(y))
    if loss_name == "mse":
      return jnp.square(jnp.expm1(out) - y)
    return jnp.abs(jnp.expm1(out) - y)

  def predict(self, out):
    return jnp.expm1(out)

  def validation_metric(self, out, y, mask):
    return metrics.relative_error(self.predict(out), y, mask)

  def head_bias(self, y):
    """The median of log1p(y), the logMAE minimiser: the head need not climb from 0 to ~10."""
    return jnp.median(jnp.log1p(y))

  def stat_key(self, name):
    return f"mean_{name}"

  def panel(self, name, label):
    del label  # A ratio of two values in the label's unit: it has none.
    return (f"{name} relative error (y > 0)", "|prediction - y| / y (ratio, no unit)",
            f"{name}/{self.metric}")

  def value_checks(self, values):
    return [(pc.less(values, 0), "negative value(s)",
             "A numerical label must be >= 0 (its model predicts log1p of it)")]


KINDS = {k.name: k for k in (Binary("binary", ("bce",), "auc", 1),
                             Numerical("numerical", ("logmae", "mse", "mae"), "rel_error", 0))}


def of(label) -> LabelKind:
  """The kind of a label's section (a label derived by a threshold is binary)."""
  return KINDS["binary" if label.threshold is not None else label.type]


def column_kind(label) -> LabelKind:
  """The kind whose value checks a label's log column gets: a threshold reads the column as
  numerical (>= 0)."""
  return KINDS["numerical"] if label.threshold is not None else KINDS[label.type]
