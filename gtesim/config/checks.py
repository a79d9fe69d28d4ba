"""Checks a config's values before any long work starts (SPEC §7)."""

import difflib
import math

import ml_collections

from gtesim import designs
from gtesim import environments
from gtesim import label_kinds
from gtesim import models
from gtesim import prng
from gtesim.stats import estimators
from gtesim.core import exploration
from gtesim.config import defaults as default_config
from gtesim.data.dataset import FORMATS
from gtesim.data.sizes import SYNTHETIC_KUAIREC_SIZES, SYNTHETIC_SIZES
from gtesim.errors import InputError
from gtesim.errors import require as _require

# Keys before the config sections (issue 35) and where they went, for the error's hint;
# a model's keys moved into their class's subsection, `id_<key>` into `ids.<key>` (found by
# the CLI itself).
MOVED_KEYS = {
    "experiment.weight_clip": "experiment.weighting.clip",
    "experiment.g_update": "experiment.weighting.g_update",
    "experiment.weight_features": "experiment.weighting.features",
    "experiment.weight_model": "experiment.weighting.g",
    "experiment.p_items": "experiment.codiverted.p_items",
    "experiment.codiverted_training": "experiment.codiverted.training",
    "experiment.n_clusters": "experiment.cluster.n",
    "experiment.cluster_column": "experiment.cluster.column",
    "experiment.cluster_iterations": "experiment.cluster.iterations",
    "experiment.cluster_shuffle": "experiment.cluster.shuffle",
    "experiment.switch_every": "experiment.switchback.every",
    "experiment.switch_order": "experiment.switchback.order",
    "experiment.switch_burn_in": "experiment.switchback.burn_in",
}

# Sections whose keys other code checks: feature declarations (data.features.<table>).
_FREE_SECTIONS = ("data.features",)


def _unknown(key, known, prefix):
  close = difflib.get_close_matches(key, list(known), n=1)
  hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
  raise InputError(f"config key '{prefix}{key}' does not exist{hint}. Keys are those of "
                   "gtesim/config/defaults.py; fix the config file or the override.")


def _check_keys(config, reference, prefix=""):
  """Every key of `config` exists in `reference` (recursively); labels are checked against
  the label schema, whatever their names."""
  for key in config.keys():
    if key not in reference:
      _unknown(key, reference.keys(), prefix)
    value, ref = config[key], reference[key]
    path = f"{prefix}{key}"
    if path in _FREE_SECTIONS:
      continue
    if path == "labels":
      schema = next(iter(default_config.get_config().labels.values()))
      for name, label in value.items():
        if not isinstance(label, ml_collections.ConfigDict):
          raise InputError(f"config key 'labels.{name}' must be a label section like "
                           "labels.click in gtesim/config/defaults.py.")
        _check_keys(label, schema, f"labels.{name}.")
        missing = sorted(set(schema.keys()) - set(label.keys()))
        if missing:
          raise InputError(f"config key 'labels.{name}.{missing[0]}' is missing: every label "
                           f"declares {', '.join(schema.keys())}.")
    elif path in tuple(f"arms.{arm}.labels" for arm in default_config.ARMS):
      schema = default_config.arm_label_section()
      for name, section in value.items():
        if not isinstance(section, ml_collections.ConfigDict):
          raise InputError(f"config key '{path}.{name}' must be a section of model keys "
                           "(each None or an override of the label's own value).")
        _check_keys(section, schema, f"{path}.{name}.")
    elif isinstance(ref, ml_collections.ConfigDict):
      if not isinstance(value, ml_collections.ConfigDict):
        raise InputError(f"config key '{path}' must be a section, not {value!r}.")
      _check_keys(value, ref, f"{path}.")


def check_keys(config) -> None:
  """The config's keys are the default schema's (plus `study` in study configs)."""
  reference = default_config.get_config()
  with reference.unlocked():
    reference.study = default_config.study_section()
  _check_keys(config, reference)


def _check_model_section(section, key: str) -> None:
  """A label's (or the weight model's) model class and sizes."""
  names = models.MODEL_CLASSES.names()
  close = difflib.get_close_matches(str(section.model), list(names), n=1)
  _require(section.model in names, f"{key}.model",
           f"'{section.model}' is not a model class"
           f"{f' (did you mean {close[0]!r}?)' if close else ''}; use one of {', '.join(names)}.")
  _require(not models.counts(section.model) or section.get("type", "binary") == "binary",
           f"{key}.model", f"'{section.model}' learns by counting consumption, a yes or no: "
           f"it needs a binary label, not a {section.get('type')} one.")
  _require(section.learning_rate > 0, f"{key}.learning_rate", "must be > 0.")
  _require(section.weight_decay >= 0, f"{key}.weight_decay", "must be >= 0.")
  _require(0 <= section.dropout < 1, f"{key}.dropout", "must be in [0, 1).")
  for sizes in ("mlp.hidden", "two_tower.tower_hidden", "wide_deep.hidden"):
    _require(all(isinstance(h, int) and h >= 1 for h in default_config.at(section, sizes)),
             f"{key}.{sizes}", "widths must be positive integers.")
  for size in ("two_tower.tower_dim", "two_tower.id_dim", "ids.buckets",
               "wide_deep.cross_buckets"):
    value = default_config.at(section, size)
    _require(isinstance(value, int) and value >= 1, f"{key}.{size}",
             "must be a positive integer.")
  ids = section.ids
  _require(isinstance(ids.budget, int) and ids.budget >= 0, f"{key}.ids.budget",
           "must be a non-negative integer (0: always hash).")
  _require(ids.buckets < 2**32, f"{key}.ids.buckets",
           "buckets must be below 2^32 (32-bit hashes).")
  _require(section.wide_deep.cross_buckets < 2**32, f"{key}.wide_deep.cross_buckets",
           "buckets must be below 2^32 (32-bit hashes).")
  _require(ids.learning_rate > 0, f"{key}.ids.learning_rate", "must be > 0.")
  _require(ids.initial_accumulator > 0, f"{key}.ids.initial_accumulator", "must be > 0.")
  _require(ids.eps >= 0, f"{key}.ids.eps", "must be >= 0.")
  _require(0 <= ids.dropout < 1, f"{key}.ids.dropout", "must be in [0, 1).")



def _is_number(value) -> bool:
  """A finite real number (bools and strings are not numbers)."""
  return (isinstance(value, (int, float)) and not isinstance(value, bool)
          and math.isfinite(value))


def _number_tuples(config):
  """(key, values) of the config's tuples of numbers."""
  return [(f"sweep.{k}", config.sweep[k]) for k in ("p_treatment", "alpha_gap", "epsilon",
                                                      "temperature")] + [
      (f"study.{k}", config.study[k]) for k in ("p_values", "alpha_gaps", "epsilons")
      if "study" in config]


def _check_numbers(key: str, values) -> None:
  """Every element of a tuple key is a finite number, or one line naming the key and value."""
  _require(isinstance(values, (tuple, list)), key,
           f"{values!r} is not a tuple of numbers, e.g. (0.3, 0.5).")
  # A tuple that does not parse as numbers arrives whole as one string: ('(0.5,nan)',).
  unparsed = len(values) == 1 and isinstance(values[0], str)
  _require(not unparsed, key, f"{values[0] if unparsed else ''} is not a tuple of finite "
           "numbers (nan, inf and words are refused); give numbers, e.g. (0.3, 0.5).")
  for value in values:
    _require(_is_number(value), key,
             f"{value!r} in {tuple(values)!r} is not a finite number (nan, inf and words are "
             "refused); give numbers, e.g. (0.3, 0.5).")


def check(config) -> None:
  """Raises InputError naming the first bad key (the designs and environments check their
  own keys)."""
  check_keys(config)
  _require(config.mode in designs.MODES, "mode",
           f"'{config.mode}' is not one of {', '.join(designs.MODES)}.")
  _require(config.repetitions >= 1, "repetitions", "must be at least 1.")
  _require(config.rep_offset >= 0, "rep_offset", "must be non-negative.")
  for key, seed in (("seed", config.seed), ("data.pack_seed", config.data.pack_seed),
                    ("data.synthetic.seed", config.data.synthetic.seed)):
    _require(0 <= seed < prng.SEEDS, key,
             f"{seed} is outside [0, 2^32): seeds out of that range alias others.")
  _require(config.rep_offset + config.repetitions <= prng.SEEDS, "rep_offset",
           f"rep_offset + repetitions ({config.rep_offset + config.repetitions}) exceeds 2^32: "
           "repetition indices out of [0, 2^32) alias others.")
  data = config.data
  _require(data.name in FORMATS, "data.name", f"'{data.name}': use one of {', '.join(FORMATS)}.")
  _require(data.synthetic.kuairec_size in SYNTHETIC_KUAIREC_SIZES,
           "data.synthetic.kuairec_size", f"'{data.synthetic.kuairec_size}': use one of "
           f"{', '.join(SYNTHETIC_KUAIREC_SIZES)}.")
  _require(0 <= data.synthetic.blocked_rate < 1, "data.synthetic.blocked_rate",
           "must be in [0, 1).")
  _require(data.synthetic.size in SYNTHETIC_SIZES, "data.synthetic.size",
           f"'{data.synthetic.size}': use one of {', '.join(SYNTHETIC_SIZES)}.")
  _require(0 <= data.user_p_val < 1, "data.user_p_val", "must be in [0, 1).")
  _require(0 <= data.video_p_test < 1, "data.video_p_test", "must be in [0, 1).")
  _require(data.max_history >= 0, "data.max_history", "must be >= 0 (0 keeps every row).")
  _require(data.page_slots >= 1, "data.page_slots", "must be at least 1.")
  _require(len(config.labels) >= 1, "labels", "declare at least one label.")
  _require(config.checkpoint_every >= 1, "checkpoint_every", "must be at least 1.")
  _require(_is_number(config.join_timeout_s) and config.join_timeout_s >= 1, "join_timeout_s",
           f"{config.join_timeout_s!r} must be a number of seconds >= 1.")
  _require(config.optim.grad_clip > 0, "optim.grad_clip", "must be > 0.")
  _require(data.user_p_val > 0, "data.user_p_val",
           "must be > 0: validation users decide when pretraining stops and give the "
           "validation metrics.")
  for name, label in config.labels.items():
    _check_model_section(label, f"labels.{name}")
  _check_arm_sections(config)
  _check_model_section(config.experiment.weighting.g, "experiment.weighting.g")
  _require(config.experiment.weighting.g.model == models.DEFAULT_CLASS
           or config.experiment.weighting.features == "all", "experiment.weighting.features",
           "'video' (G on video features alone) needs experiment.weighting.g.model = "
           f"'{models.DEFAULT_CLASS}': the ID models' user side is the user's own row.")
  for name, label in config.labels.items():
    for arm in ("alpha_T", "alpha_C"):
      _require(math.isfinite(label[arm]), f"labels.{name}.{arm}", "must be a finite number.")
    kinds = label_kinds.KINDS
    _require(label.type in kinds, f"labels.{name}.type",
             f"'{label.type}': use {' or '.join(repr(k) for k in kinds)}.")
    _require(label.loss in kinds[label.type].losses, f"labels.{name}.loss",
             f"'{label.loss}' does not fit a {label.type} label; use one of "
             f"{', '.join(kinds[label.type].losses)}.")
    _require(label.threshold is None or (isinstance(label.threshold, (int, float)) and
                                         math.isfinite(label.threshold)),
             f"labels.{name}.threshold", "must be None or a finite number.")
    _require(label.threshold is None or label.type == "binary", f"labels.{name}.type",
             "a label derived by a threshold is binary; set type 'binary' and loss 'bce'.")
  exp = config.experiment
  _require(_is_number(exp.p_treatment) and 0 < exp.p_treatment < 1, "experiment.p_treatment",
           f"{exp.p_treatment!r} is not in (0, 1).")
  _require(exp.assignment in ("user", "step"), "experiment.assignment",
           f"'{exp.assignment}': use 'user' or 'step'.")
  sweep = config.sweep
  for key, values in _number_tuples(config):
    _check_numbers(key, values)
  _require(all(0 < p < 1 for p in sweep.p_treatment), "sweep.p_treatment",
           "every p must be in (0, 1).")
  _require(len(set(sweep.p_treatment)) == len(sweep.p_treatment), "sweep.p_treatment",
           "holds a value twice.")
  _require(all(g >= 0 for g in sweep.alpha_gap), "sweep.alpha_gap",
           "every gap must be >= 0 (0 is the A/A).")
  _require(len(set(sweep.alpha_gap)) == len(sweep.alpha_gap), "sweep.alpha_gap",
           "holds a value twice.")
  _require(not sweep.points or not (sweep.p_treatment or sweep.alpha_gap), "sweep.points",
           "set either sweep.points or sweep.p_treatment / sweep.alpha_gap, not both.")
  for point in sweep.points:
    _require(isinstance(point, (tuple, list)) and len(point) == 2, "sweep.points",
             f"{point!r}: each point is a pair (p_treatment, alpha_gap).")
    _check_numbers("sweep.points", point)
    _require(0 < point[0] < 1 and point[1] >= 0, "sweep.points",
             f"{point!r}: each point is (p_treatment in (0, 1), alpha_gap >= 0).")
  exploration.check_config(config)
  designs.check_config(config)
  estimators.check_names(config)
  if config.mode in designs.AB_DESIGNS:  # A study (mode global): study/plan.py per job.
    estimators.check_config(config, designs.make(config), designs.sweep_points(config))
  _require(config.estimator.batch_blocks >= 2, "estimator.batch_blocks", "must be at least 2.")
  pre = config.pretrain
  for key in ("n_interactions", "batch_size", "max_epochs", "patience"):
    _require(pre[key] >= 1, f"pretrain.{key}", "must be at least 1.")
  _require(pre.min_delta >= 0, "pretrain.min_delta", "must be >= 0.")
  sim = config.get("sim")
  if sim is not None:
    _require(sim.vectorize in ("auto", "map", "vmap"), "sim.vectorize",
             f"'{sim.vectorize}': use 'auto', 'map' or 'vmap'.")
    environments.check_config(config)
    for key in ("n_steps", "batch_size", "n_candidate", "validate_every", "updates_per_step",
                "eval_rows"):
      _require(sim[key] >= 1, f"sim.{key}", "must be at least 1.")
    _require(sim.arm_blocks >= 1, "sim.arm_blocks", "must be at least 1.")
    _require(0 <= sim.replicate < prng.SEEDS, "sim.replicate",
             "must be in [0, 2^32): it is folded into the repetition's key.")
    _require(sim.n_steps % sim.validate_every == 0, "sim.n_steps",
             f"{sim.n_steps} must be a multiple of sim.validate_every ({sim.validate_every}).")
    _require(config.checkpoint_every % sim.validate_every == 0, "checkpoint_every",
             f"{config.checkpoint_every} must be a multiple of sim.validate_every "
             f"({sim.validate_every}).")


def _check_arm_sections(config) -> None:
  """`arms.<arm>.labels.<name>`: overrides only of declared labels, and each arm's resulting
  model sections valid (named by the override's key)."""
  for arm in default_config.ARMS:
    for name, section in config.arms[arm].labels.items():
      set_keys = [k for k in default_config.flat_keys(section)
                  if default_config.at(section, k) is not None]
      _require(not set_keys or name in config.labels,
               f"arms.{arm}.labels.{name}." + (set_keys[0] if set_keys else ""),
               f"overrides the model of label '{name}', which config.labels does not declare "
               f"(labels: {', '.join(config.labels)}).")
    for name, section in models.arm_label_sections(config, arm).items():
      _check_model_section(section, f"arms.{arm}.labels.{name}")


def _flatten(d, prefix=""):
  out = {}
  for k, v in d.items():
    out.update(_flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
  return out


def first_difference(a: dict, b: dict, allowed=()):
  """The first dotted key (sorted) where two JSON configs differ, outside `allowed`, as
  (key, value in a, value in b); None if they agree."""
  a, b = _flatten(a), _flatten(b)
  for key in sorted(set(a) | set(b)):
    if key not in allowed and a.get(key) != b.get(key):
      return key, a.get(key), b.get(key)
  return None
