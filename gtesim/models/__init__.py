"""Label models (SPEC §3): model classes behind a registry, one LabelModel per label.

`labels.<name>` gives a label its kind (label_kinds), loss, model class (`model`), sizes and
optimizers. A model class owns its state and how it learns: `init(key, dims)` and
`init_optimizer(params, optimizer)` (its parameters and its learning state), `apply` (rows of
pairs), `score_pairs` (users x candidates), `update` (one learning step on weighted rows:
gradient classes call models/gradient.py), `dense_of` / `gather` / `score_gathered` (per-arm
scoring without copying a table), `with_head` (the output bias), `describe` (its tables) and
`flops`. docs/extending.md says how to add one.
"""

import optax

from gtesim import label_kinds
from gtesim.data import encoding
from gtesim.models import mlp
from gtesim.models import two_tower
from gtesim.models import wide_deep
from gtesim.models.label_model import (  # pylint: disable=unused-import
    Dims, LabelModel, ModelClass, Pairs)
from gtesim.registry import Registry

MODEL_CLASSES = Registry("model class", "labels.<name>.model")
MODEL_CLASSES.register("mlp", mlp.from_config)
MODEL_CLASSES.register("two_tower", two_tower.from_config)
MODEL_CLASSES.register("wide_deep", wide_deep.from_config)
DEFAULT_CLASS = "mlp"  # labels.<name>.model's default; the one class that can see the video
# features alone (the weight model with experiment.weight_features = "video").


def dims_of(ds) -> Dims:
  """The sizes of a dataset's users and videos a model class is built on."""
  users, videos = encoding.Layout.of(ds.users), encoding.Layout.of(ds.videos)
  return Dims(users.width, videos.width, int(ds.users.num.shape[0]),
              int(ds.videos.num.shape[0]), users.cat_widths, videos.cat_widths)


def label_model(config, name: str, kind, loss: str, section, dims=None,
                **class_args) -> LabelModel:
  """A LabelModel of a config section (its class, sizes, learning rates, weight decay): the
  dense parameters optimized by AdamW with global-norm gradient clipping; `dims`: the
  dataset's sizes (models with ID tables need them); `class_args` go to the model class."""
  net = MODEL_CLASSES.get(section.model)(section, dims=dims, **class_args)
  optimizer = optax.chain(optax.clip_by_global_norm(config.optim.grad_clip),
                          optax.adamw(section.learning_rate, weight_decay=section.weight_decay))
  return LabelModel(name, kind, loss, net, optimizer)


def label_models(config, dims=None) -> tuple:
  """LabelModels in config.labels order."""
  return tuple(label_model(config, name, label_kinds.KINDS[label.type], label.loss, label,
                           dims)
               for name, label in config.labels.items())


def describe(config, models) -> dict:
  """{label: {"model": its class, "tables": each ID table's ids, rows, hashing and collision
  rate}} (result.json's pretrain.models, run.log)."""
  return {m.name: {"model": config.labels[m.name].model, "tables": m.describe()}
          for m in models}
