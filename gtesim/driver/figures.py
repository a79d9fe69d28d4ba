"""figure.png / figure.svg: a run's validation metrics per step (SPEC §6)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from gtesim import designs
from gtesim import label_kinds
from gtesim import writing

GROUP_LABELS = {"GT": "GT (treatment)", "GC": "GC (control)", "T": "treatment arm",
                "C": "control arm",
                **{d.reporting.step_metrics_world: d.reporting.step_metrics_label
                   for _, d in designs.DESIGNS.items() if d.reporting.step_metrics}}


def panels(config) -> list:
  """(title, y-axis label, metric keys, text when empty) of the figure's panels: per label,
  its kind's metric (label_kinds: AUC, or relative error on y > 0) and the loss; then the
  run's design's own (weighting: the weight model's two of SPEC §6's six panels, and its
  training weights' spread)."""
  out = []
  for name in config.labels:
    label = config.labels[name]
    out.append(label_kinds.of(label).panel(name, label) + ("no values",))
    out.append((f"{name} loss", _loss_axis(label), f"{name}/loss", "no values"))
  return out + list(designs.DESIGNS.get(config.mode).reporting.figure_panels)


def _loss_axis(label) -> str:
  """The loss panel's y label, with the unit the loss is in."""
  unit = label.unit or "label units"
  return {"logmae": f"logmae: |log1p(pred) - log1p(y)|, in log1p({unit})",
          "mse": f"mse, in ({unit})^2", "mae": f"mae, in {unit}",
          "bce": "bce (nats)"}.get(label.loss, f"{label.loss} loss")


def headline(config, result: dict) -> str:
  """The figure's title: each label's GTE (global) or estimate (an A/B design) at the run's
  first point, mean over the repetitions with its standard error."""
  point = result["points"][0] if "points" in result else result
  what = "true GTE" if "gt" in point else f"{config.mode} estimate of the GTE"  # gt: GT - GC.
  parts = []
  for name, g in point["gte"].items():
    unit = config.labels[name].unit
    se = g["se"]  # None (JSON's NaN) with one repetition.
    parts.append(f"{name} {g['mean']:+.4g}" + (f" ± {se:.2g}" if se is not None else "")
                 + (f" {unit}" if unit else ""))
  return (f"{what} per recommendation (mean ± SE over {config.repetitions} repetitions): "
          + "; ".join(parts))


def figure(path_stem, metrics_table: dict, panel_list, headline_text: str = "") -> None:
  """The metrics figure (PNG and SVG), one panel per `panels(config)` entry, two per column:
  median over repetitions, band = the interquartile range (robust to one repetition's
  outlier; a relative error's band stays >= 0); log y axis where a panel's values are
  positive and span more than 100x.

  Args:
    path_stem: output path without suffix.
    metrics_table: columns step, world, split and one per metric (rows per rep); a metric is
      drawn for every (world, split) where it has values.
    panel_list: `panels(config)`.
    headline_text: the figure's title (`headline`).
  """
  n_cols = -(-len(panel_list) // 2)
  fig, axes = plt.subplots(2, n_cols, figsize=(5 * n_cols, 8), constrained_layout=True,
                           squeeze=False)
  steps = np.asarray(metrics_table["step"])
  worlds = np.asarray(metrics_table["world"])
  split = np.asarray(metrics_table["split"])
  for ax, (title, ylabel, keys, empty) in zip(axes.T.ravel(), panel_list):
    keys = (keys,) if isinstance(keys, str) else keys
    drawn, shown = False, []
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
          q25, median, q75 = np.array([np.nanquantile(p, [0.25, 0.5, 0.75]) for p in per]).T
          name = key.split("/")[-1]
          text = label if part == "new" else f"{label} {part}"
          line, = ax.plot(xs, median, style,
                          label=text + (f": {name}" if len(keys) > 1 else ""))
          ax.fill_between(xs, q25, q75, color=line.get_color(), alpha=0.15)
          drawn = True
          shown.append(values[rows])
    ax.set_title(title + " (median, IQR band)" if drawn else title)
    if shown:
      v = np.concatenate(shown)
      if v.min() > 0 and v.max() > 100 * v.min():
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    if drawn:
      ax.legend(fontsize=7)
    else:
      ax.text(0.5, 0.5, empty, ha="center", va="center", transform=ax.transAxes, color="gray")
  for ax in axes.T.ravel()[len(panel_list):]:
    ax.set_visible(False)
  if headline_text:
    fig.suptitle(headline_text, fontsize=11)
  save_figure(fig, path_stem)


def save_figure(fig, stem) -> None:
  """Writes a matplotlib figure as PNG and SVG, atomically, and closes it."""
  for suffix in (".png", ".svg"):
    with writing.atomic_path(f"{stem}{suffix}") as tmp:
      fig.savefig(tmp, format=suffix[1:], dpi=110)
  plt.close(fig)
