"""Merges runs that split one run's repetitions (SLURM array tasks) into a single run's outputs.

The pieces must have the same config but for `repetitions` and `rep_offset`, and together
cover a contiguous range of repetitions once. Their per-step and per-validation tables are
concatenated along the repetition axis and go through the same code that writes a run's
outputs, so the merged result.json equals that of one run with all the repetitions.
"""

import json
import pathlib

import ml_collections
import numpy as np
import pyarrow.parquet as pq

from gtesim import config_check
from gtesim import simulation
from gtesim.errors import InputError

PER_PIECE_KEYS = ("repetitions", "rep_offset")


def _load_piece(run_dir: pathlib.Path):
  for name in ("config.json", "result.json", "steps.parquet", "metrics.parquet"):
    if not (run_dir / name).exists():
      raise InputError(f"{run_dir} has no {name}: pass finished run folders to merge.")
  config = json.loads((run_dir / "config.json").read_text())
  return (config, json.loads((run_dir / "result.json").read_text()),
          pq.read_table(run_dir / "steps.parquet").to_pydict(),
          pq.read_table(run_dir / "metrics.parquet").to_pydict())


def _unflatten_rows(table, columns, n_reps, n_groups, rows=None):
  """Long-table columns -> {column: [T, B, G]} (rows in step, rep, group order)."""
  out = {}
  for column in columns:
    values = np.asarray(table[column])
    if rows is not None:
      values = values[rows]
    out[column] = values.reshape(-1, n_reps, n_groups)
  return out


def _piece_history(config, steps, metrics):
  design = simulation.design_of(config)
  groups = simulation.groups_of(design)
  labels = list(config.labels)
  n_reps = config.repetitions
  history = {}
  for field in ("outcome_sum", "outcome_sq", "loss"):
    per_label = _unflatten_rows(steps, [f"{field}/{l}" for l in labels], n_reps, len(groups))
    history[f"step|{field}"] = np.stack([per_label[f"{field}/{l}"] for l in labels], axis=-1)
  for field in ("n_recs", "n_exhausted", "n_short"):
    history[f"step|{field}"] = _unflatten_rows(steps, [field], n_reps, len(groups))[field]
  split = np.asarray(metrics["split"])
  for part in ("train", "val"):
    names = [f"{l}/loss" for l in labels] + [
        f"{l}/auc" if config.labels[l].type == "binary" else f"{l}/rel_error" for l in labels]
    rows = split == part
    for name, value in _unflatten_rows(metrics, names, n_reps, len(groups), rows).items():
      history[f"{part}|{name}"] = value
  if design.uses_weight_model:
    names = [f"weight/{m}" for m in simulation.WEIGHT_METRICS]
    for name, value in _unflatten_rows(metrics, names, n_reps, 1, split == "new").items():
      history[f"new|{name}"] = value
  rows = split == "val"
  history["eval_step"] = np.asarray(metrics["step"])[rows][::n_reps * len(groups)]
  return history


def merge(run_dirs, out_dir) -> dict:
  """Merges finished run folders into `out_dir`; returns the merged result.json content."""
  pieces = [_load_piece(pathlib.Path(d)) for d in run_dirs]
  if not pieces:
    raise InputError("merge needs at least one run folder.")
  for (config, _, _, _), run_dir in zip(pieces[1:], run_dirs[1:]):
    diff = config_check.first_difference(pieces[0][0], config, PER_PIECE_KEYS)
    if diff:
      key, first, this = diff
      raise InputError(f"{run_dir}: config key {key} is {this!r} but {run_dirs[0]} has "
                       f"{first!r}; only {', '.join(PER_PIECE_KEYS)} may differ between the "
                       "pieces of one run.")
  order = np.argsort([c["rep_offset"] for c, _, _, _ in pieces], kind="stable")
  pieces = [pieces[i] for i in order]
  reps = np.concatenate([np.arange(c["rep_offset"], c["rep_offset"] + c["repetitions"])
                         for c, _, _, _ in pieces])
  if not np.array_equal(reps, np.arange(reps[0], reps[0] + len(reps))):
    raise InputError(f"the pieces cover repetitions {reps.tolist()}: they must cover a "
                     "contiguous range once (check the array tasks' rep_offset).")
  histories = [_piece_history(ml_collections.ConfigDict(c), s, m) for c, _, s, m in pieces]
  history = {k: (histories[0][k] if k == "eval_step" else
                 np.concatenate([h[k] for h in histories], axis=1)) for k in histories[0]}
  merged = ml_collections.ConfigDict(pieces[0][0])
  merged.repetitions = len(reps)
  merged.rep_offset = int(reps[0])
  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  (out_dir / "config.json").write_text(merged.to_json_best_effort(indent=1) + "\n")
  timing = {"wall_s": float(sum(r["timing"]["wall_s"] for _, r, _, _ in pieces)),
            "merged_runs": len(pieces)}
  return simulation.write_outputs(merged, pieces[0][1]["dataset"], history, reps, out_dir,
                                  timing)
