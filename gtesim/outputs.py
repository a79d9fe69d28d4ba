"""What a run writes: result.json, the steps/metrics Parquet tables, the six-panel figure."""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gtesim import designs
from gtesim import estimators
from gtesim import history as history_lib
from gtesim import io
from gtesim import logs
from gtesim import metrics_np
from gtesim.data import dataset

log = logs.get_logger("result")

def dataset_info(config, overview) -> dict:
  """The dataset facts result.json repeats: counts, label rates/means, fingerprint."""
  keys = ["n_users", "n_videos", "n_interactions", "env_density", "n_pretrain_interactions",
          *dataset.label_stat_keys(config), "fingerprint"]
  return {k: overview[k] for k in keys}


GROUP_LABELS = {"GT": "GT (treatment)", "GC": "GC (control)", "T": "treatment arm",
                "C": "control arm", "G": "G on new items"}


def jsonable(obj, digits: int = 0):
  """obj with NaN/inf floats as None (JSON null) and numpy scalars as Python numbers; floats
  rounded to `digits` significant digits when digits > 0."""
  if isinstance(obj, dict):
    return {k: jsonable(v, digits) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [jsonable(v, digits) for v in obj]
  if isinstance(obj, np.ndarray):
    return jsonable(obj.tolist(), digits)
  if isinstance(obj, (float, np.floating)):
    if not math.isfinite(obj):
      return None
    return float(f"{obj:.{digits}g}") if digits else float(obj)
  if isinstance(obj, np.integer):
    return int(obj)
  return obj


def _std(x):
  x = x[np.isfinite(x)]
  return float(np.std(x, ddof=1)) if len(x) > 1 else float("nan")


def summary(per_rep, **extra) -> dict:
  """per_rep with its mean, sample sd and standard error over repetitions."""
  per_rep = np.asarray(per_rep, np.float64)
  finite = per_rep[np.isfinite(per_rep)]
  mean = float(finite.mean()) if len(finite) == len(per_rep) and len(finite) else float("nan")
  sd = _std(per_rep)
  return {"per_rep": per_rep.tolist(), "mean": mean, "std": sd,
          "se": sd / np.sqrt(len(per_rep)), **extra}


def point_name(worlds: designs.Worlds, point: int) -> str:
  """A sweep point's label: "" when the run has one point."""
  if len(worlds.points) == 1 or point < 0:
    return ""
  p, gap = worlds.points[point]
  return f"[gap={gap:g}]" if worlds.mode == "global" else f"[p={p:g},gap={gap:g}]"


def global_point(labels, history, worlds: designs.Worlds, point: int) -> dict:
  """GT at a point's alpha gap, GC, and the true GTE per label (per recommendation)."""
  s = history.steps
  gt_w, gc_w = point, worlds.n_worlds - 1
  means = estimators.world_means(s.outcome_sum[:, :, :, 0], s.n_recs[:, :, :, 0])  # [B, W, L]
  totals = s.outcome_sum[:, :, :, 0].astype(np.float64).sum(0)
  out = {"p_treatment": None, "alpha_gap": worlds.points[point][1], "gte": {}, "gt": {},
         "gc": {}}
  for l, name in enumerate(labels):
    gte = means[:, gt_w, l] - means[:, gc_w, l]
    with np.errstate(invalid="ignore", divide="ignore"):
      pct = np.where(means[:, gc_w, l] != 0, 100 * gte / means[:, gc_w, l], np.nan)
    extra = {"total_per_rep": (totals[:, gt_w, l] - totals[:, gc_w, l]).tolist(),
             "pct_per_rep": pct.tolist(),
             "pct_mean": float(pct.mean()) if np.isfinite(pct).all() else None}
    if not np.isfinite(pct).all():
      extra["pct_note"] = ("undefined (null) where GC's mean outcome is 0: no percentage of "
                           "zero")
    out["gte"][name] = summary(gte, **extra)
    out["gt"][name] = summary(means[:, gt_w, l], total_per_rep=totals[:, gt_w, l].tolist())
    out["gc"][name] = summary(means[:, gc_w, l], total_per_rep=totals[:, gc_w, l].tolist())
  return out


def ab_point(labels, history, worlds: designs.Worlds, point: int, n_blocks: int,
             design: designs.Design) -> dict:
  """The naive estimate of one point with its standard errors and 95% CIs per method."""
  s = history.steps
  user_var = history.evals["user_var"][-1][:, point] if "user_var" in history.evals else None
  unit_var, n_units = estimators.unit_variance(design, s.outcome_sum[:, :, point],
                                               s.n_recs[:, :, point], history.evals, -1, point)
  e = estimators.ab_estimate(s.outcome_sum[:, :, point], s.outcome_sq[:, :, point],
                             s.n_recs[:, :, point], user_var, n_blocks, estimators.LEVEL,
                             unit_var, n_units)
  p, gap = worlds.points[point]
  out = {"p_treatment": p, "alpha_gap": gap, "gte": {}, "arms": {"T": {}, "C": {}}}
  for l, name in enumerate(labels):
    out["gte"][name] = summary(
        e["estimate"][:, l],
        se_per_rep={m: e["se"][m][:, l].tolist() for m in estimators.METHODS},
        ci95_per_rep={m: e["ci"][m][:, l].tolist() for m in estimators.METHODS})
    out["arms"]["T"][name] = summary(e["arm_mean"][:, 0, l])
    out["arms"]["C"][name] = summary(e["arm_mean"][:, 1, l])
  return out


def point_results(config, history, worlds: designs.Worlds) -> list:
  labels = list(config.labels)
  if worlds.mode == "global":
    return [global_point(labels, history, worlds, s) for s in range(len(worlds.points))]
  design = designs.design_of(config)
  return [ab_point(labels, history, worlds, s, config.estimator.batch_blocks, design)
          for s in range(len(worlds.points))]


def _finite_mean(values):
  """Mean over repetitions of the finite values; None (JSON null) if there are none."""
  mean = float(metrics_np.finite_mean(values))
  return mean if math.isfinite(mean) else None


def model_metrics(history, worlds: designs.Worlds) -> dict:
  """Validation and train-side metrics per world-arm: right after pretraining (`@0`) and at
  the end, mean over repetitions."""
  out = {}
  for w, a, point, name in worlds.groups():
    key = name + point_name(worlds, point)
    for split in history_lib.SPLITS:
      for metric, v in history.evals[split].items():
        out.setdefault(key, {})[f"{split}/{metric}"] = _finite_mean(v[-1][:, w, a])
        out[key][f"{split}/{metric}@0"] = _finite_mean(v[0][:, w, a])
  if worlds.mode == "weighting":
    g = history_lib.weight_model_per_eval(history)[-1]  # [B, W, 3]
    for s in range(len(worlds.points)):
      out["G" + point_name(worlds, s)] = {
          f"new/weight/{m}": _finite_mean(g[:, s, i])
          for i, m in enumerate(history_lib.WEIGHT_METRICS)}
  return out


def write_table(path, columns: dict) -> None:
  """Writes equal-length numpy columns as Parquet, atomically."""
  with io.atomic_path(path) as tmp:
    pq.write_table(pa.table({k: np.asarray(v) for k, v in columns.items()}), tmp)


def write_run(config, dataset_info, pretrain_report, history, worlds: designs.Worlds,
              rep_indices, workdir, timing) -> dict:
  """Writes result.json, steps.parquet, metrics.parquet and the figure; returns the result."""
  labels = list(config.labels)
  result = {"mode": config.mode, "repetitions": config.repetitions,
            "rep_offset": config.rep_offset, "seed": config.seed,
            "n_steps": config.sim.n_steps, "assignment": config.experiment.assignment,
            "dataset": dataset_info, "pretrain": pretrain_report,
            "experiment_rows_per_world": config.sim.n_steps * config.sim.batch_size,
            "environment": {"kind": config.sim.environment, "outcome": config.sim.outcome,
                            "retrieval": config.sim.retrieval}}
  points = point_results(config, history, worlds)
  for point in points:  # What the effect is of: outcome draws or their expectations.
    for entry in point["gte"].values():
      entry["outcome"] = config.sim.outcome
  if len(points) == 1:
    result.update(points[0])
  else:
    result["points"] = points
  s = history.steps
  for field, key in (("recommendations", s.n_recs), ("exhausted_users", s.n_exhausted),
                     ("short_users", s.n_short)):
    totals = key.astype(np.int64).sum(0)  # [B, W, A]
    result[field] = {name + point_name(worlds, q): totals[:, w, a].tolist()
                     for w, a, q, name in worlds.groups()}
  _warn_short(config, result)
  result["metrics_final_and_at_step_0"] = model_metrics(history, worlds)
  result["timing"] = {k: v for k, v in timing.items() if v is not None}
  result = jsonable(result)
  step_cols, metric_cols = history_lib.to_tables(history, worlds, labels, rep_indices)
  write_table(workdir / "steps.parquet", step_cols)
  write_table(workdir / "metrics.parquet", metric_cols)
  first = np.isin(metric_cols["point"], [0, -1])
  figure(workdir / "figure", {k: np.asarray(v)[first] for k, v in metric_cols.items()},
         panels(config))
  io.write_json(workdir / "result.json", result)
  _log_result(config, result, points)
  return result


def _warn_short(config, result) -> None:
  """A warning when sampled users had no candidate (exhausted) or fewer than n_candidate."""
  exhausted = sum(map(sum, result["exhausted_users"].values()))
  short = sum(map(sum, result["short_users"].values()))
  total = sum(map(sum, result["recommendations"].values())) + exhausted
  if short:
    fix = ("raise sim.candidate_draws" if config.sim.environment == "latent" else
           "the logs hold too few items per user for this horizon; use a shorter "
           "sim.n_steps or a counterfactual environment (sim.environment)")
    log.warning("%s of %s sampled users (all worlds and repetitions) had fewer than "
                "sim.n_candidate = %d candidates, %s of them none (exhausted, no "
                "recommendation); result.json's short_users and exhausted_users count them per "
                "world: %s.", f"{short:,}", f"{total:,}", config.sim.n_candidate,
                f"{exhausted:,}", fix)


def _log_result(config, result, points):
  for point in points if "points" in result else [result]:
    where = ""
    if "points" in result:
      where = (f" at gap {point['alpha_gap']:g}" if config.mode == "global" else
               f" at p={point['p_treatment']:g}, gap {point['alpha_gap']:g}")
    for name, g in point["gte"].items():
      if config.mode == "global":
        log.info("%s%s: GT %s, GC %s, GTE %s +- %s (sd %s over %d repetitions, %s%%)", name,
                 where, _g(point["gt"][name]["mean"], 6), _g(point["gc"][name]["mean"], 6),
                 _g(g["mean"], 6), _g(g["se"]), _g(g["std"]), config.repetitions,
                 _g(g["pct_mean"], 4))
      else:
        half = {m: _finite_mean(v) for m, v in g["se_per_rep"].items()}
        log.info("%s%s: %s estimate %s (sd %s over %d repetitions; mean 95%% CI half-width "
                 "%s)", name, where, config.mode, _g(g["mean"], 6), _g(g["std"]),
                 config.repetitions, ", ".join(
                     f"{m} {_g(None if v is None else 1.96 * v)}" for m, v in half.items()))


def _g(x, digits=2) -> str:
  """A number for a log line; "undefined" for None/NaN (e.g. an sd over one repetition)."""
  return "undefined" if x is None or not math.isfinite(x) else f"{x:.{digits}g}"


def panels(config) -> list:
  """(title, y-axis label, metric keys) of the figure's panels: per label, AUC (binary) or
  relative error on y > 0 (numerical) and the loss; then the weight model's."""
  out = []
  for name in config.labels:
    label = config.labels[name]
    kind = dataset.label_kinds(config)[name]
    unit = f" ({label.unit})" if label.unit else ""
    if kind == "binary":
      out.append((f"{name} AUC", "AUC", f"{name}/auc"))
    else:
      out.append((f"{name} relative error (y > 0)", f"|prediction - y| / y{unit}",
                  f"{name}/rel_error"))
    out.append((f"{name} loss", f"{label.loss} loss", f"{name}/loss"))
  out.append(("weight-model AUC and accuracy", "AUC, accuracy",
              ("weight/auc", "weight/accuracy")))
  out.append(("weight-model loss", "BCE loss", "weight/loss"))
  return out


def figure(path_stem, metrics_table: dict, panel_list) -> None:
  """The metrics figure (PNG and SVG), one panel per `panels(config)` entry, two per column:
  mean over repetitions, band = +-1 sd.

  Args:
    path_stem: output path without suffix.
    metrics_table: columns step, world, split and one per metric (rows per rep); a metric is
      drawn for every (world, split) where it has values.
    panel_list: `panels(config)`.
  """
  n_cols = -(-len(panel_list) // 2)
  fig, axes = plt.subplots(2, n_cols, figsize=(5 * n_cols, 8), constrained_layout=True,
                           squeeze=False)
  steps = np.asarray(metrics_table["step"])
  worlds = np.asarray(metrics_table["world"])
  split = np.asarray(metrics_table["split"])
  for ax, (title, ylabel, keys) in zip(axes.T.ravel(), panel_list):
    keys = (keys,) if isinstance(keys, str) else keys
    drawn = False
    for key in keys:
      if key not in metrics_table:
        continue
      values = np.asarray(metrics_table[key], np.float64)
      for world, label in GROUP_LABELS.items():
        for part, style in (("train", "--"), ("val", "-"), ("new", "-")):
          rows = (worlds == world) & (split == part) & ~np.isnan(values)
          if not rows.any():
            continue
          xs = np.unique(steps[rows])
          per = [values[rows & (steps == x)] for x in xs]
          mean = np.array([np.nanmean(p) for p in per])
          sd = np.array([np.nanstd(p) for p in per])
          name = key.split("/")[-1]
          text = label if part == "new" else f"{label} {part}"
          line, = ax.plot(xs, mean, style,
                          label=text + (f": {name}" if len(keys) > 1 else ""))
          ax.fill_between(xs, mean - sd, mean + sd, color=line.get_color(), alpha=0.15)
          drawn = True
    ax.set_title(title)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    if drawn:
      ax.legend(fontsize=7)
    else:
      ax.text(0.5, 0.5, "no weight model in this mode" if "weight" in title else "no values",
              ha="center", va="center", transform=ax.transAxes, color="gray")
  for ax in axes.T.ravel()[len(panel_list):]:
    ax.set_visible(False)
  save_figure(fig, path_stem)


def save_figure(fig, stem) -> None:
  """Writes a matplotlib figure as PNG and SVG, atomically, and closes it."""
  for suffix in (".png", ".svg"):
    with io.atomic_path(f"{stem}{suffix}") as tmp:
      fig.savefig(tmp, format=suffix[1:], dpi=110)
  plt.close(fig)
