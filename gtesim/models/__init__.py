"""Label models (SPEC §3): model classes behind a registry, one LabelModel per label.

`labels.<name>` gives a label its kind (label_kinds), loss, model class (`model`), sizes and
optimizers. A model class owns its state and how it learns: `init(key, dims)` and
`init_optimizer(params, optimizer)` (its parameters and its learning state), `apply` (rows of
pairs), `score_pairs` (users x candidates), `update` (one learning step on weighted rows:
gradient classes call models/gradient.py), `dense_of` / `gather` / `score_gathered` (per-arm
scoring without copying a table), `with_head` (the output bias), `describe` (its tables) and
`flops`, and `counts` (True: it learns by counting and outputs ranking scores, models/cf.py).
docs/extending.md says how to add one.
"""

import optax

from gtesim import label_kinds
from gtesim.config.defaults import ARMS, at, model_keys, model_section
from gtesim.data import encoding
from gtesim.models import cf
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
MODEL_CLASSES.register("item_cf", cf.from_config("item_cf"))
MODEL_CLASSES.register("user_cf", cf.from_config("user_cf"))
MODEL_KEYS = model_keys()
DEFAULT_CLASS = "mlp"  # labels.<name>.model's default; the one class that can see the video
# features alone (the weight model with experiment.weighting.features = "video").


def counts(model_class: str) -> bool:
  """Whether a registered model class learns by counting (models/cf.py): no gradients, no
  row weights, ranking scores instead of predictions on the label's scale."""
  net = MODEL_CLASSES.get(model_class)(model_section(), dims=Dims(1, 1))  # Any sizes.
  return getattr(net, "counts", False)


def counting_keys(config) -> list:
  """The config keys (`labels.<name>.model`, `arms.<arm>.labels.<name>.model`) that name a
  class that learns by counting."""
  out = []
  for arm in ARMS:
    for name, section in arm_label_sections(config, arm).items():
      if section.model in MODEL_CLASSES.names() and counts(section.model):
        given = config.get("arms", {}).get(arm, {}).get("labels", {}).get(name)
        out.append(f"arms.{arm}.labels.{name}.model" if given is not None
                   and given.get("model") is not None else f"labels.{name}.model")
  return sorted(set(out))


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


def label_models(config, dims=None, sections=None) -> tuple:
  """LabelModels in config.labels order (`sections`: {label: its model section}, e.g. one
  arm's, arm_label_sections; default the labels' own)."""
  sections = sections or dict(config.labels.items())
  return tuple(label_model(config, name, label_kinds.KINDS[label.type], label.loss,
                           sections[name], dims)
               for name, label in config.labels.items())


def arm_label_sections(config, arm: str) -> dict:
  """{label: its section with `arms.<arm>.labels.<label>`'s overrides applied}."""
  overrides = config.get("arms", {}).get(arm, {}).get("labels", {})
  out = {}
  for name, label in config.labels.items():
    section = label.copy_and_resolve_references()
    given = overrides.get(name)
    for key in MODEL_KEYS:
      value = at(given, key) if given is not None else None
      if value is not None:
        *path, last = key.split(".")
        node = section
        for part in path:
          node = node[part]
        node[last] = value
    out[name] = section
  return out



def _model_values(sections) -> tuple:
  return tuple((name, tuple((k, at(section, k)) for k in MODEL_KEYS))
               for name, section in sections.items())


def rankers(config, dims=None) -> tuple:
  """(the distinct rankers, each a tuple of LabelModels in config.labels order; each arm's
  ranker index (treatment, control)). One ranker when both arms' model sections agree (every
  config without `arms` overrides: today's objects), else the treatment's then the
  control's."""
  sections = [arm_label_sections(config, arm) for arm in ARMS]
  if _model_values(sections[0]) == _model_values(sections[1]):
    return (label_models(config, dims, sections[0]),), (0, 0)
  return tuple(label_models(config, dims, s) for s in sections), (0, 1)


def n_rankers(config) -> int:
  """1 when both arms' model sections agree, else 2 (without building a model)."""
  a, b = (_model_values(arm_label_sections(config, arm)) for arm in ARMS)
  return 1 if a == b else 2


def arm_differences(config) -> list:
  """The model keys (`arms.<arm>.labels.<name>.<key>`) where the arms' sections differ."""
  a, b = (dict(_model_values(arm_label_sections(config, arm))) for arm in ARMS)
  return [f"arms.*.labels.{name}.{key}" for name in a
          for (key, va), (_, vb) in zip(a[name], b[name]) if va != vb]


def ranker_prefixes(n_rankers: int) -> tuple:
  """What names a ranker's labels in pretraining's reports: "" with one ranker, else
  "treatment." and "control."."""
  return ("",) if n_rankers == 1 else tuple(f"{arm}." for arm in ARMS)


def ranker_label_names(config) -> list:
  """The production models' names, ranker-major: the labels with one ranker, else
  `treatment.<label>` then `control.<label>`."""
  return [f"{prefix}{name}" for prefix in ranker_prefixes(n_rankers(config))
          for name in config.labels]


def describe(config, dims) -> dict:
  """{model name (ranker_label_names): {"model": its class, "tables": each ID table's ids,
  rows, hashing and collision rate}} (result.json's pretrain.models, run.log)."""
  ranker_models, arm_ranker = rankers(config, dims)
  out = {}
  for r, (prefix, ranker) in enumerate(zip(ranker_prefixes(len(ranker_models)),
                                           ranker_models)):
    sections = arm_label_sections(config, ARMS[arm_ranker.index(r)])
    for m in ranker:
      out[f"{prefix}{m.name}"] = {"model": sections[m.name].model, "tables": m.describe()}
  return out
