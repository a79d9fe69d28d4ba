"""A study's figures: errors, p and gap sweeps, horizon, pretraining (SVG and PNG)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from gtesim.driver.figures import save_figure
from gtesim.stats import descriptive
from gtesim.study.summary import point_key



def _axes(n_labels, rows=1):
  fig, axes = plt.subplots(rows, n_labels, figsize=(6.5 * n_labels, 4.3 * rows),
                           constrained_layout=True, squeeze=False)
  return fig, axes


def figures(config, summary, out_dir):
  labels = list(config.labels)
  main = point_key(config.experiment.p_treatment, 1.0)
  names = list(summary["designs"])
  fig, axes = _axes(len(labels))
  for ax, l in zip(axes[0], labels):
    errors = [np.asarray(summary["designs"][d][main][l]["per_rep"], np.float64) -
              np.asarray(summary["truth"]["gap=1"][l]["per_rep"], np.float64) for d in names]
    errors = [e[np.isfinite(e)] for e in errors]
    ax.boxplot(errors, tick_labels=names)
    ax.axhline(0, color="red", ls="--", lw=1)
    ax.set_title(f"{l}: estimate - own repetition's true GTE ({main}, B={summary['B']})")
    ax.tick_params(axis="x", labelrotation=20)
  save_figure(fig, out_dir / "errors")

  for sweep, xlabel in (("p", "p_treatment (alpha gap 1)"),
                        ("gap", f"alpha gap (p = {config.experiment.p_treatment:g})")):
    fig, axes = _axes(len(labels))
    for ax, l in zip(axes[0], labels):
      for d in names:
        pts = [(k, v) for k, v in summary["designs"][d].items()
               if "eps=" not in k and ((sweep == "p" and k.endswith("gap=1")) or
               (sweep == "gap" and k.startswith(f"p={config.experiment.p_treatment:g},")))]
        xs = [float(dict(x.split("=") for x in k.split(","))[sweep]) for k, _ in pts]
        order = np.argsort(xs)
        ys = np.array([v[l]["bias"] for _, v in pts])[order]
        es = 1.96 * np.array([v[l]["bias_se"] for _, v in pts])[order]
        ax.errorbar(np.asarray(xs)[order], ys, yerr=es, marker="o", capsize=3, label=d)
      ax.axhline(0, color="gray", lw=0.8)
      ax.set_xlabel(xlabel)
      ax.set_title(f"{l}: paired bias (± 1.96 se)")
      ax.legend(fontsize=8)
    save_figure(fig, out_dir / f"{sweep}_sweep")

  fig, axes = _axes(len(labels), rows=2)
  for j, l in enumerate(labels):
    for d in names:
      h = summary["horizon"][d]
      steps, bias = np.asarray(h["step"]), np.asarray(h[l]["bias"])
      se = np.asarray(h[l]["bias_se"])
      line, = axes[0, j].plot(steps, bias, marker=".", label=d)
      axes[0, j].fill_between(steps, bias - 1.96 * se, bias + 1.96 * se,
                              color=line.get_color(), alpha=0.15)
      axes[1, j].plot(steps, h[l]["coverage"]["welch"], marker=".", color=line.get_color(),
                      label=f"{d} welch")
      axes[1, j].plot(steps, h[l]["coverage"]["batch"], ls="--", color=line.get_color(),
                      label=f"{d} batch")
    first = summary["horizon"][names[0]]
    ax2 = axes[0, j].twinx()
    ax2.plot(first["step"], first[l]["truth_mean"], color="black", lw=2, alpha=0.4,
             label="true GTE (right axis)")
    ax2.legend(fontsize=7, loc="lower right")
    axes[0, j].axhline(0, color="gray", lw=0.8)
    axes[0, j].set_title(f"{l}: paired bias of the cumulative estimate vs steps")
    axes[0, j].legend(fontsize=7, loc="upper left")
    axes[1, j].axhline(0.95, color="gray", lw=0.8)
    axes[1, j].set_title(f"{l}: 95% CI coverage vs steps (solid welch, dashed batch means)")
    axes[1, j].set_xlabel("step")
    axes[1, j].legend(fontsize=6, ncol=2)
  save_figure(fig, out_dir / "horizon")

  curve = summary["pretrain"]["curve"]
  if curve["train_loss"][labels[0]]:
    fig, axes = _axes(len(labels) + 1)
    epochs = np.arange(1, len(curve["train_loss"][labels[0]]) + 1)
    for ax, l in zip(axes[0], labels):
      ax.plot(epochs, descriptive.finite_mean(curve["val"][f"{l}/loss"], 1), marker=".",
              label="validation")
      ax.plot(epochs, descriptive.finite_mean(curve["train_loss"][l], 1), ls="--",
              label="training (models still training)")
      ax.set_title(f"pretraining: {l} loss per epoch (mean over repetitions)")
    for key, per_epoch in curve["val"].items():
      if not key.endswith("/loss"):
        axes[0, -1].plot(epochs, descriptive.finite_mean(per_epoch, 1), marker=".",
                         label=f"val {key}")
    axes[0, -1].set_title("pretraining: validation AUC / relative error")
    for ax in axes[0]:
      ax.set_xlabel("epoch")
      ax.legend(fontsize=7)
    save_figure(fig, out_dir / "pretraining")
