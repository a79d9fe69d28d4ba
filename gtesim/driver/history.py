"""A run's history as a pytree, and its one conversion to and from long tables.

`History` holds every step's `StepOut` ([T, B, W, ...]) and every validation's metrics
([E, B, W, A] per metric; the design's own evaluation, e.g. the user-clustered variance
[E, B, W, L] under A/B designs). The driver appends chunks to it; `to_tables` writes it as the
steps/metrics tables and `from_tables` reads them back, so merging array-task pieces and
writing a run share one path.
"""

import dataclasses

import jax
import numpy as np
from flax import struct

from gtesim import label_kinds
from gtesim.core.state import StepOut
from gtesim.designs import Worlds

SPLITS = ("val", "train")


@struct.dataclass
class History:
  steps: StepOut | None  # Fields [T, B, W, ...] (numpy); None before the first chunk.
  eval_step: np.ndarray  # [E] steps after which validation ran (0 = before the first step).
  evals: dict  # {"val"|"train": {metric: [E, B, W, A]}, "user_var": [E, B, W, L] (A/B),
  # "unit_var": [E, B, W, L] (cluster design)}.

  @property
  def n_steps(self) -> int:
    return int(self.steps.n_recs.shape[0])

  @property
  def n_reps(self) -> int:
    return int(self.steps.n_recs.shape[1])


def _map_tree(fn, tree):
  return {k: (_map_tree(fn, v) if isinstance(v, dict) else fn(v)) for k, v in tree.items()}


def _host(tree):
  return _map_tree(np.asarray, tree)


def start(evaluated: dict) -> History:
  """A history holding only the validation before the first step."""
  return History(None, np.zeros(1, np.int64),
                 _map_tree(lambda v: np.asarray(v)[None], evaluated))


def append(history: History, out: StepOut, evaluated: dict, t_end: int) -> History:
  """The history after one chunk: its StepOut [B, W, T, ...] and the validation after it."""
  new = jax.tree.map(lambda v: np.moveaxis(np.asarray(v), 2, 0), out)
  steps = new if history.steps is None else jax.tree.map(
      lambda old, v: np.concatenate([old, v]), history.steps, new)
  evals = _concat_tree(history.evals, _map_tree(lambda v: v[None], _host(evaluated)))
  return History(steps, np.append(history.eval_step, t_end), evals)


def _concat_tree(a: dict, b: dict, axis=0) -> dict:
  return {k: (_concat_tree(a[k], b[k], axis) if isinstance(a[k], dict) else
              np.concatenate([a[k], b[k]], axis)) for k in a}


def concat_reps(pieces: list) -> History:
  """Histories of consecutive repetition ranges -> one history (same steps and worlds)."""
  steps = jax.tree.map(lambda *f: np.concatenate(f, axis=1), *[h.steps for h in pieces])
  evals = pieces[0].evals
  for h in pieces[1:]:
    evals = _concat_tree(evals, h.evals, axis=1)
  return History(steps, pieces[0].eval_step, evals)


def design_metrics_per_eval(history: History) -> dict:
  """{metric: [E, B, W]} mean over each validation interval's steps of the design's own
  per-step metrics (weighting: G's on new items; NaN at step 0, before any step)."""
  names = list(history.steps.design)
  if not names:
    return {}
  # One [T, B, W, M] array, steps outermost and metrics innermost in memory, whatever
  # produced the history: numpy then sums the steps sequentially (it sums a contiguous
  # reduced axis pairwise, which rounds otherwise), so a run and its tables read back agree.
  g = np.stack([history.steps.design[n] for n in names], -1)
  out = np.full((len(history.eval_step),) + g.shape[1:], np.nan, np.float64)
  for e in range(1, len(history.eval_step)):
    block = g[history.eval_step[e - 1]:history.eval_step[e]]
    if np.isfinite(block).any():
      out[e] = np.nanmean(block, axis=0)
  return {n: out[..., i] for i, n in enumerate(names)}


def _long(values: dict, steps, reps, groups):
  """{name: [X, B, W, A] or [X, B, W]} -> long columns, one row per (x, rep, group)."""
  x, b, g = len(steps), len(reps), len(groups)
  cols = {"step": np.repeat(np.asarray(steps), b * g), "rep": np.tile(np.repeat(reps, g), x),
          "point": np.tile([q for _, _, q, _ in groups], x * b),
          "world": np.tile(np.asarray([n for _, _, _, n in groups]), x * b)}
  w_index = np.array([w for w, _, _, _ in groups])
  a_index = np.array([a for _, a, _, _ in groups])
  for name, v in values.items():
    v = np.asarray(v)
    cols[name] = (v[:, :, w_index, a_index] if v.ndim == 4 else v[:, :, w_index]).reshape(-1)
  return cols


def to_tables(history: History, worlds: Worlds, labels: list, reps) -> tuple:
  """(steps columns, metrics columns): one row per step (validation) x rep x world-arm."""
  groups = worlds.groups()
  s = history.steps
  per_step = {"n_recs": s.n_recs, "n_exhausted": s.n_exhausted, "n_short": s.n_short}
  for field, value in (("outcome_sum", s.outcome_sum), ("outcome_sq", s.outcome_sq),
                       ("loss", s.loss)):
    per_step.update({f"{field}/{l}": value[..., i] for i, l in enumerate(labels)})
  design = worlds.design
  # Per world, e.g. G's.
  per_step.update({m: s.design[m] for m in design.reporting.step_metrics})
  step_cols = _long(per_step, np.arange(1, history.n_steps + 1), reps, groups)
  parts = []
  for split in SPLITS:
    cols = _long(history.evals[split], history.eval_step, reps, groups)
    cols["split"] = np.full(len(cols["step"]), split)
    parts.append(cols)
  if design.reporting.step_metrics:
    g = design_metrics_per_eval(history)
    cols = _long({m: g[m] for m in design.reporting.step_metrics}, history.eval_step, reps,
                 [grp for grp in groups if grp[1] == 0])
    cols["world"] = np.full(len(cols["step"]), design.reporting.step_metrics_world)
    cols["split"] = np.full(len(cols["step"]), "new")
    parts.append(cols)
  variances = {f"{field}/{l}": history.evals[field][..., i]
               for field in design.unit.fields for i, l in enumerate(labels)}
  if variances:
    cols = _long(variances, history.eval_step, reps, [grp for grp in groups if grp[1] == 0])
    cols["world"] = np.full(len(cols["step"]), "T-C")
    cols["split"] = np.full(len(cols["step"]), "estimate")
    parts.append(cols)
  return step_cols, concat_columns(parts)


def concat_columns(parts: list) -> dict:
  """Concatenates column dicts; a column absent from a part is NaN there."""
  names = list(dict.fromkeys(k for p in parts for k in p))
  out = {}
  for name in names:
    pieces = []
    for p in parts:
      n = len(next(iter(p.values())))
      pieces.append(np.asarray(p[name]) if name in p else np.full(n, np.nan))
    out[name] = np.concatenate(pieces)
  return out


def _unlong(cols: dict, rows, names, n_x, n_reps, pairs, shape_wa):
  """Inverse of _long for the rows `rows` (in x, rep, group order) -> {name: [X, B, ...]}."""
  out = {}
  for name in names:
    v = np.asarray(cols[name])[rows].reshape(n_x, n_reps, len(pairs))
    full = np.full((n_x, n_reps) + shape_wa, np.nan, v.dtype if v.dtype.kind == "f" else
                   np.float64)
    for j, idx in enumerate(pairs):
      full[(slice(None), slice(None)) + idx] = v[:, :, j]
    out[name] = full
  return out


def from_tables(step_cols: dict, metric_cols: dict, worlds: Worlds, labels: list,
                model_metrics: list, n_reps: int) -> History:
  """The History `to_tables` wrote (columns as dicts of arrays)."""
  groups = worlds.groups()
  w, a = worlds.n_worlds, worlds.arms
  pairs = [(gw, ga) for gw, ga, _, _ in groups]
  n_t = len(step_cols["step"]) // (n_reps * len(groups))
  all_rows = np.arange(len(step_cols["step"]))
  per = _unlong(step_cols, all_rows, ["n_recs", "n_exhausted", "n_short"], n_t, n_reps, pairs,
                (w, a))
  def stacked(field):
    d = _unlong(step_cols, all_rows, [f"{field}/{l}" for l in labels], n_t, n_reps, pairs,
                (w, a))
    return np.stack([d[f"{field}/{l}"] for l in labels], -1).astype(np.float32)
  names = worlds.design.reporting.step_metrics
  design = {}
  if names:
    d = _unlong(step_cols, all_rows, list(names), n_t, n_reps, [(gw,) for gw, _ in pairs], (w,))
    design = {m: d[m].astype(np.float32) for m in names}
  steps = StepOut(stacked("outcome_sum"), stacked("outcome_sq"),
                  per["n_recs"].astype(np.int32), per["n_exhausted"].astype(np.int32),
                  per["n_short"].astype(np.int32), stacked("loss"), design)
  split = np.asarray(metric_cols["split"])
  evals = {}
  eval_step = None
  for name in SPLITS:
    rows = np.flatnonzero(split == name)
    n_e = len(rows) // (n_reps * len(groups))
    evals[name] = {k: v.astype(np.float32) for k, v in _unlong(
        metric_cols, rows, model_metrics, n_e, n_reps, pairs, (w, a)).items()}
    eval_step = np.asarray(metric_cols["step"])[rows][::n_reps * len(groups)].astype(np.int64)
  rows = np.flatnonzero(split == "estimate")
  if len(rows):
    arm0 = [(gw,) for gw, ga, _, _ in groups if ga == 0]
    n_e = len(rows) // (n_reps * len(arm0))
    for field in worlds.design.unit.fields:
      names = [f"{field}/{l}" for l in labels]
      d = _unlong(metric_cols, rows, names, n_e, n_reps, arm0, (w,))
      evals[field] = np.stack([d[n] for n in names], -1).astype(np.float32)
  return History(steps, eval_step, evals)


def to_dict(history: History) -> dict:
  """Plain nested dict of arrays (what a checkpoint stores)."""
  return {"steps": {f.name: getattr(history.steps, f.name)
                    for f in dataclasses.fields(StepOut)},
          "eval_step": history.eval_step, "evals": history.evals}


def from_dict(d: dict) -> History:
  steps = d["steps"]
  steps = StepOut(**{f.name: (_host(steps.get(f.name) or {}) if f.name == "design" else
                              np.asarray(steps[f.name])) for f in dataclasses.fields(StepOut)})
  return History(steps, np.asarray(d["eval_step"]), _host(d["evals"]))


def model_metric_names(config) -> list:
  """The per-arm validation metrics of a config's labels (as evaluate_models names them)."""
  names = [f"{l}/loss" for l in config.labels]
  names += [f"{l}/{label_kinds.KINDS[config.labels[l].type].metric}" for l in config.labels]
  return names
