"""What a run writes: result.json, per-step Parquet tables, the six-panel figure."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gtesim import io

DATASET_KEYS = ("n_users", "n_videos", "n_interactions", "click_rate", "mean_play_time_ms")


def _std(x):
  return float(np.std(x, ddof=1)) if len(x) > 1 else 0.0


def _summary(per_rep, **extra):
  per_rep = np.asarray(per_rep, np.float64)
  return {"per_rep": per_rep.tolist(), "mean": float(per_rep.mean()), "std": _std(per_rep),
          "se": _std(per_rep) / np.sqrt(len(per_rep)), **extra}


def global_result(labels, world_names, outcome_sum, n_recs) -> dict:
  """GT, GC and GTE per label from per-world totals.

  Args:
    labels: label names.
    world_names: ("GT", "GC").
    outcome_sum: [B, W, L] float64 summed outcomes.
    n_recs: [B, W] recommendations.
  """
  mean = outcome_sum / np.maximum(n_recs, 1)[..., None]
  gt, gc = world_names.index("GT"), world_names.index("GC")
  out = {"gte": {}, "gt": {}, "gc": {}}
  for l, name in enumerate(labels):
    gte = mean[:, gt, l] - mean[:, gc, l]
    out["gte"][name] = _summary(
        gte, total_per_rep=(outcome_sum[:, gt, l] - outcome_sum[:, gc, l]).tolist(),
        pct_per_rep=(100 * gte / mean[:, gc, l]).tolist(),
        pct_mean=float(np.mean(100 * gte / mean[:, gc, l])))
    out["gt"][name] = _summary(mean[:, gt, l], total_per_rep=outcome_sum[:, gt, l].tolist())
    out["gc"][name] = _summary(mean[:, gc, l], total_per_rep=outcome_sum[:, gc, l].tolist())
  return out


def ab_result(labels, outcome_sum, outcome_sq, n_recs) -> dict:
  """The naive A/B estimate per label and repetition with its standard error and 95% CI.

  estimate = mean_T - mean_C of the outcome per recommendation; se = sqrt(s_T^2 / n_T +
  s_C^2 / n_C) with s^2 the sample variance of the arm's per-recommendation outcomes (Welch);
  CI = estimate +- 1.96 se.

  Args:
    outcome_sum, outcome_sq: [B, 2, L] float64 sums and sums of squares (arm 0 = T, 1 = C).
    n_recs: [B, 2] recommendations per arm.
  """
  n = np.maximum(n_recs, 1)[..., None].astype(np.float64)
  mean = outcome_sum / n
  var = np.maximum(outcome_sq - n * mean * mean, 0.0) / np.maximum(n - 1, 1)
  out = {"gte": {}, "arms": {"T": {}, "C": {}}}
  for l, name in enumerate(labels):
    est = mean[:, 0, l] - mean[:, 1, l]
    se = np.sqrt(var[:, 0, l] / n[:, 0, 0] + var[:, 1, l] / n[:, 1, 0])
    out["gte"][name] = _summary(
        est, se_per_rep=se.tolist(),
        ci95_per_rep=np.stack([est - 1.96 * se, est + 1.96 * se], 1).tolist())
    out["arms"]["T"][name] = _summary(mean[:, 0, l])
    out["arms"]["C"][name] = _summary(mean[:, 1, l])
  return out


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


def write_table(path, columns: dict) -> None:
  """Writes equal-length numpy columns as Parquet, atomically."""
  with io.atomic_path(path) as tmp:
    pq.write_table(pa.table({k: np.asarray(v) for k, v in columns.items()}), tmp)


def long_table(history: dict, steps, reps, groups):
  """Flattens {name: [T, B, G]} into columns with step, rep and world (the group's name)."""
  t, b, g = len(steps), len(reps), len(groups)
  cols = {"step": np.repeat(np.asarray(steps), b * g), "rep": np.tile(np.repeat(reps, g), t),
          "world": np.tile(np.asarray(groups), t * b)}
  for name, values in history.items():
    cols[name] = np.asarray(values).reshape(t * b * g)
  return cols


_PANELS = (("click AUC", "click/auc"), ("click loss", "click/loss"),
           ("play-time relative error (non-zero play)", "play_time/rel_error"),
           ("play-time loss", "play_time/loss"),
           ("weight-model AUC and accuracy", ("weight/auc", "weight/accuracy")),
           ("weight-model loss", "weight/loss"))


def figure(path_stem, metrics_table: dict, world_labels: dict) -> None:
  """The six-panel figure (PNG and SVG): mean over repetitions, band = +-1 sd.

  Args:
    path_stem: output path without suffix.
    metrics_table: columns step, world, split and one per metric (rows per rep); a metric is
      drawn for every (world, split) where it has values.
    world_labels: world name -> legend label (e.g. "GT (treatment)").
  """
  fig, axes = plt.subplots(2, 3, figsize=(15, 8), constrained_layout=True)
  steps = np.asarray(metrics_table["step"])
  worlds = np.asarray(metrics_table["world"])
  split = np.asarray(metrics_table["split"])
  for ax, (title, keys) in zip(axes.T.ravel(), _PANELS):
    keys = (keys,) if isinstance(keys, str) else keys
    drawn = False
    for key in keys:
      if key not in metrics_table:
        continue
      values = np.asarray(metrics_table[key], np.float64)
      for world, label in world_labels.items():
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
    if drawn:
      ax.legend(fontsize=7)
    else:
      ax.text(0.5, 0.5, "no weight model in this mode", ha="center", va="center",
              transform=ax.transAxes, color="gray")
  for suffix in (".png", ".svg"):
    with io.atomic_path(f"{path_stem}{suffix}") as tmp:
      fig.savefig(tmp, format=suffix[1:], dpi=110)
  plt.close(fig)
