"""Checks a config's values before any long work starts (SPEC §7)."""

from gtesim.default_config import SYNTHETIC_SIZES
from gtesim.errors import InputError

MODES = ("global", "pooling", "splitting", "snapshot", "weighting")
LOSSES = {"binary": ("bce",), "numerical": ("logmae", "mse", "mae")}


def _require(ok, key, what):
  if not ok:
    raise InputError(f"config key {key}: {what}")


def check(config) -> None:
  """Raises InputError naming the first bad key."""
  _require(config.mode in MODES, "mode", f"'{config.mode}' is not one of {', '.join(MODES)}.")
  _require(config.repetitions >= 1, "repetitions", "must be at least 1.")
  _require(config.rep_offset >= 0, "rep_offset", "must be non-negative.")
  data = config.data
  _require(data.name in ("synthetic", "kuairand"), "data.name",
           f"'{data.name}': use 'synthetic' or 'kuairand'.")
  _require(data.synthetic.size in SYNTHETIC_SIZES, "data.synthetic.size",
           f"'{data.synthetic.size}': use one of {', '.join(SYNTHETIC_SIZES)}.")
  _require(0 <= data.user_p_val < 1, "data.user_p_val", "must be in [0, 1).")
  _require(0 <= data.video_p_test < 1, "data.video_p_test", "must be in [0, 1).")
  _require(data.max_history >= 1, "data.max_history", "must be at least 1.")
  _require(data.page_slots >= 1, "data.page_slots", "must be at least 1.")
  _require(len(config.labels) >= 1, "labels", "declare at least one label.")
  for name, label in config.labels.items():
    _require(label.type in LOSSES, f"labels.{name}.type",
             f"'{label.type}': use 'binary' or 'numerical'.")
    _require(label.loss in LOSSES[label.type], f"labels.{name}.loss",
             f"'{label.loss}' does not fit a {label.type} label; use one of "
             f"{', '.join(LOSSES[label.type])}.")
    _require(all(h >= 1 for h in label.hidden), f"labels.{name}.hidden",
             "widths must be positive.")
    _require(0 <= label.dropout < 1, f"labels.{name}.dropout", "must be in [0, 1).")
  exp = config.experiment
  _require(0 < exp.p_treatment < 1, "experiment.p_treatment", "must be in (0, 1).")
  _require(exp.assignment in ("user", "step"), "experiment.assignment",
           f"'{exp.assignment}': use 'user' or 'step'.")
  _require(exp.g_update in ("after", "before"), "experiment.g_update",
           f"'{exp.g_update}': use 'after' or 'before'.")
  _require(exp.weight_clip >= 0, "experiment.weight_clip", "must be >= 0 (0: no clipping).")
  _require(config.mode != "snapshot" or config.sim.train_models, "sim.train_models",
           "the snapshot design already freezes the models; leave it True.")
  sim = config.get("sim")
  if sim is not None:
    for key in ("n_steps", "batch_size", "n_candidate", "validate_every", "updates_per_step",
                "eval_rows"):
      _require(sim[key] >= 1, f"sim.{key}", "must be at least 1.")
    _require(sim.n_steps % sim.validate_every == 0, "sim.n_steps",
             f"{sim.n_steps} must be a multiple of sim.validate_every ({sim.validate_every}).")
    _require(config.checkpoint_every % sim.validate_every == 0, "checkpoint_every",
             f"{config.checkpoint_every} must be a multiple of sim.validate_every "
             f"({sim.validate_every}).")


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
