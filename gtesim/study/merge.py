"""Merges runs that split one run's repetitions (SLURM array tasks) into a single run's outputs.

The pieces must have the same config but for `repetitions` and `rep_offset`, and together
cover a contiguous range of repetitions once. Each piece's tables are read back into its
History (`history.from_tables`), the histories are joined along the repetition axis, and the
result goes through the same writer as a run, so the merged outputs equal those of one run
with all the repetitions.
"""

import json
import pathlib

import ml_collections
import numpy as np
import pyarrow.parquet as pq

from gtesim import designs
from gtesim import writing
from gtesim.config import checks as config_checks
from gtesim.driver import history as history_lib
from gtesim.driver import results
from gtesim.driver import workdir as workdir_lib
from gtesim.errors import InputError

PER_PIECE_KEYS = ("repetitions", "rep_offset")


def _load_piece(run_dir: pathlib.Path):
  """A finished piece, checked to be one whole run: its config's, result's and tables' step
  counts agree (a `--resume` extension killed half way rewrites config.json but not the
  tables)."""
  for name in ("config.json", "result.json", "steps.parquet", "metrics.parquet"):
    if not (run_dir / name).exists():
      raise InputError(f"{run_dir} has no {name}: pass finished run folders to merge.")
  config = json.loads((run_dir / "config.json").read_text())
  result = json.loads((run_dir / "result.json").read_text())
  steps = pq.read_table(run_dir / "steps.parquet").to_pydict()
  n_config, n_result = config["sim"]["n_steps"], result.get("n_steps")
  n_tables = max(steps["step"], default=0)
  if not n_config == n_result == n_tables:
    raise InputError(f"{run_dir} is not a finished run: config.json says {n_config} steps, "
                     f"result.json {n_result}, steps.parquet {n_tables} (a --resume that did "
                     "not finish?); finish it with --resume, then merge.")
  return config, result, steps, pq.read_table(run_dir / "metrics.parquet").to_pydict()


def _check_out(run_dirs, out_dir: pathlib.Path, overwrite: bool) -> None:
  """Refuses an --out that is one of the pieces, or holds a run unless `overwrite`."""
  for run_dir in run_dirs:
    if pathlib.Path(run_dir).resolve() == out_dir.resolve():
      raise InputError(f"--out {out_dir} is one of the pieces to merge; choose another "
                       "folder.")
  present = [n for n in workdir_lib.RUN_FILES if (out_dir / n).exists()]
  if present and not overwrite:
    raise InputError(f"--out {out_dir} already holds a run ({', '.join(present[:4])}...); "
                     "pass --overwrite to replace it, or choose another folder.")


def _pad_epochs(per_epoch: list, n: int, fill_last: bool) -> np.ndarray:
  """[E, B] -> [n, B]: a piece that stopped pretraining earlier keeps its stopped models, so
  its validation metrics repeat the last epoch's and its training losses are NaN."""
  a = np.asarray(per_epoch, np.float64).reshape(len(per_epoch), -1)
  extra = np.repeat(a[-1:], n - len(a), 0) if fill_last else np.full((n - len(a),
                                                                      a.shape[1]), np.nan)
  return np.concatenate([a, extra])


def merge_pretrain(reports: list) -> dict:
  """The pretraining report of the joined repetitions."""
  first = reports[0]
  n = max(r["epochs_run"] for r in reports)
  out = {k: first[k] for k in ("enabled", "rows", "batch_size", "max_epochs", "patience",
                               "min_delta")}
  out["epochs_run"] = n
  out["wall_s"] = float(sum(r["wall_s"] for r in reports))
  for key in ("best_epoch", "best_val_loss", "converged"):
    out[key] = {l: sum((r[key][l] for r in reports), []) for l in first[key]}
  out["converged_fraction"] = {l: float(np.mean(v)) for l, v in out["converged"].items()}
  curve = {"train_loss": {}, "val": {}}
  for part, fill_last in (("train_loss", False), ("val", True)):
    for name in first["curve"][part]:
      if n:
        curve[part][name] = np.concatenate(
            [_pad_epochs(r["curve"][part][name], n, fill_last) for r in reports], 1).tolist()
      else:
        curve[part][name] = []
  out["curve"] = curve
  if "models" in first:  # The pieces' configs are equal: so are their models' tables.
    out["models"] = first["models"]
  return out


def merge(run_dirs, out_dir, overwrite=False) -> dict:
  """Merges finished run folders into `out_dir` (locked while it writes; one holding a run is
  refused unless `overwrite`, which first removes every run file); returns the merged
  result.json content."""
  out_dir = pathlib.Path(out_dir)
  _check_out(run_dirs, out_dir, overwrite)
  pieces = [_load_piece(pathlib.Path(d)) for d in run_dirs]
  if not pieces:
    raise InputError("merge needs at least one run folder.")
  for (config, _, _, _), run_dir in zip(pieces[1:], run_dirs[1:]):
    diff = config_checks.first_difference(pieces[0][0], config, PER_PIECE_KEYS)
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
  configs = [ml_collections.ConfigDict(c) for c, _, _, _ in pieces]
  worlds = designs.worlds_of(configs[0])
  labels = list(configs[0].labels)
  history = history_lib.concat_reps([
      history_lib.from_tables(s, m, worlds, labels, history_lib.model_metric_names(c),
                              c.repetitions)
      for c, (_, _, s, m) in zip(configs, pieces)])
  merged = ml_collections.ConfigDict(pieces[0][0])
  merged.repetitions = len(reps)
  merged.rep_offset = int(reps[0])
  workdir_lib.make(out_dir)
  with workdir_lib.lock(out_dir):
    workdir_lib.prepare(out_dir, resume=False, overwrite=overwrite)
    writing.write_json(out_dir / "config.json", json.loads(merged.to_json_best_effort()))
    timing = {"wall_s": float(sum(r["timing"]["wall_s"] for _, r, _, _ in pieces)),
              "merged_runs": len(pieces)}
    return results.write_run(merged, pieces[0][1]["dataset"],
                             merge_pretrain([r["pretrain"] for _, r, _, _ in pieces]),
                             history, worlds, reps, out_dir, timing)
