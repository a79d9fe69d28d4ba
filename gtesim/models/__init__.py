"""Label models (SPEC §3): model classes behind a registry, one LabelModel per label.

`labels.<name>` gives a label its kind (label_kinds), loss, sizes and optimizer; its model
class comes from MODEL_CLASSES (today "mlp" only, docs/extending.md says how to add one).
"""

import optax

from gtesim import label_kinds
from gtesim.models import mlp
from gtesim.models.label_model import LabelModel, Pairs  # pylint: disable=unused-import
from gtesim.registry import Registry

MODEL_CLASSES = Registry("model class", "labels.<name>.model")
MODEL_CLASSES.register("mlp", mlp.from_config)
DEFAULT_CLASS = "mlp"  # Every label's class until a config key names another.


def label_model(config, name: str, kind, loss: str, section, **class_args) -> LabelModel:
  """A LabelModel of a config section (sizes, learning rate, weight decay), optimized by AdamW
  with global-norm gradient clipping; `class_args` go to the model class."""
  net = MODEL_CLASSES.get(DEFAULT_CLASS)(section, **class_args)
  optimizer = optax.chain(optax.clip_by_global_norm(config.optim.grad_clip),
                          optax.adamw(section.learning_rate, weight_decay=section.weight_decay))
  return LabelModel(name, kind, loss, net, optimizer)


def label_models(config) -> tuple:
  """LabelModels in config.labels order."""
  return tuple(label_model(config, name, label_kinds.KINDS[label.type], label.loss, label)
               for name, label in config.labels.items())
