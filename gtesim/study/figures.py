"""A study's figures (SVG and PNG): bias at the main point, the sweeps that ran, the horizon,
pretraining. Every axis names its unit; every legend holds only what is drawn; a sweep is
drawn only where it has more than one point (a single point is a table row)."""

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


def _unit(config, label) -> str:
  unit = config.labels[label].get("unit", "")
  return f" ({unit})" if unit else ""


def _ci_err(values, cis):
  values = np.asarray(values, np.float64)
  lo = np.asarray([c[0] for c in cis], np.float64)
  hi = np.asarray([c[1] for c in cis], np.float64)
  return np.stack([np.maximum(values - lo, 0), np.maximum(hi - values, 0)])


def _main_bias(config, summary, out_dir, labels, main):
  names = [d for d in summary["designs"] if main in summary["designs"][d]]
  fig, axes = _axes(len(labels), rows=2)
  for j, l in enumerate(labels):
    rows = [summary["designs"][d][main][l] for d in names]
    y = np.arange(len(names))
    truth = abs(summary["truth"]["gap=1"][l]["mean"])
    for i, (key, ci_key, title) in enumerate((
        ("bias_pct", "bias_pct_ci", "bias (% of the true GTE) [95% bootstrap CI]"),
        ("rmse", "rmse_ci", "RMSE (% of |true GTE|) [95% bootstrap CI]"))):
      ax = axes[i, j]
      scale = 1.0 if key == "bias_pct" else 100.0 / truth if truth else np.nan
      v = np.asarray([r[key] for r in rows], np.float64) * scale
      cis = [[c * scale for c in r[ci_key]] for r in rows]
      ax.errorbar(v, y, xerr=_ci_err(v, cis), fmt="o", capsize=3)
      ax.axvline(0, color="red" if key == "bias_pct" else "gray", ls="--", lw=1)
      ax.set_yticks(y, names)
      ax.invert_yaxis()
      ax.set_xlabel(title.split(" [")[0])
      ax.set_title(f"{l}: {title}\n{main}, B = {summary['B']}, truth "
                   f"{summary['truth']['gap=1'][l]['mean']:.4g}{_unit(config, l)}", fontsize=9)
  save_figure(fig, out_dir / "errors")


def _sweeps(config, summary, out_dir, labels):
  p_main = config.experiment.p_treatment
  swept = {"p": len(config.study.p_values) > 1,
           "gap": len([g for g in config.study.alpha_gaps if g != 0]) > 1}
  for sweep, xlabel in (("p", "p_treatment (alpha gap 1)"),
                        ("gap", f"alpha gap (p = {p_main:g}; 0 is the A/A)")):
    if not swept[sweep]:
      for ext in ("png", "svg"):  # A figure of an earlier study in this folder.
        (out_dir / f"{sweep}_sweep.{ext}").unlink(missing_ok=True)
      continue
    fig, axes = _axes(len(labels))
    for ax, l in zip(axes[0], labels):
      names = list(summary["designs"])
      for i, d in enumerate(names):
        pts = [(k, v) for k, v in summary["designs"][d].items()
               if "eps=" not in k and ((sweep == "p" and k.endswith(",gap=1")) or
                                       (sweep == "gap" and k.startswith(f"p={p_main:g},")))]
        if len(pts) < 2:
          continue
        xs = np.asarray([float(dict(x.split("=") for x in k.split(","))[sweep]) for k, _ in pts])
        order = np.argsort(xs)
        ys = np.array([v[l]["bias"] for _, v in pts])[order]
        err = _ci_err(ys, [pts[o][1][l]["bias_ci"] for o in order])
        offset = (i - len(names) / 2) * 0.006  # Side by side, so the bars do not overlap.
        ax.errorbar(xs[order] + offset, ys, yerr=err, fmt="o", capsize=3, label=d)
      ax.axhline(0, color="gray", lw=0.8)
      ax.set_xlabel(xlabel + " (run points only)")
      ax.set_ylabel(f"bias{_unit(config, l)}")
      ax.set_title(f"{l}: paired bias [95% CI] at each point that ran")
      ax.legend(fontsize=8)
    save_figure(fig, out_dir / f"{sweep}_sweep")


def _horizon(config, summary, out_dir, labels):
  methods = {l: {r["design"]: r["method"] for r in rows}
             for l, rows in summary["verdict"].items()}
  fig, axes = _axes(len(labels), rows=2)
  for j, l in enumerate(labels):
    for d, h in summary["horizon"].items():
      steps, bias = np.asarray(h["step"]), np.asarray(h[l]["bias"])
      se = np.asarray(h[l]["bias_se"])
      line, = axes[0, j].plot(steps, bias, marker=".", label=d)
      axes[0, j].fill_between(steps, bias - 1.96 * se, bias + 1.96 * se,
                              color=line.get_color(), alpha=0.15)
      own = list(h[l]["coverage"])  # The cell's SE methods (an estimator's own).
      m = methods[l].get(d) or ("user" if "user" in own else own[0])
      cov = np.asarray(h[l]["coverage"][m], np.float64)
      ci = np.asarray(h[l]["coverage_ci"][m], np.float64).reshape(-1, 2)
      axes[1, j].plot(steps, cov, marker=".", color=line.get_color(), label=f"{d} ({m} SE)")
      axes[1, j].fill_between(steps, ci[:, 0], ci[:, 1], color=line.get_color(), alpha=0.1)
    axes[0, j].axhline(0, color="gray", lw=0.8)
    axes[0, j].set_title(f"{l}: paired bias of the cumulative estimate (± 1.96 se)")
    axes[0, j].set_ylabel(f"bias{_unit(config, l)}")
    axes[0, j].legend(fontsize=7, loc="best")
    axes[1, j].axhline(0.95, color="gray", lw=0.8, ls="--")
    axes[1, j].set_title(f"{l}: coverage of each design's verdict SE [Wilson 95% CI]")
    axes[1, j].set_ylabel("coverage of the 95% CI")
    axes[1, j].set_ylim(0, 1.02)
    axes[1, j].set_xlabel("step")
    axes[1, j].legend(fontsize=7, loc="lower left")
    axes[0, j].set_xlabel("step")
  save_figure(fig, out_dir / "horizon")


def _states(config, summary, out_dir, labels):
  """Bias (% of each state's truth) along the horizon, one panel per state design and label,
  a line per production state (the main study's last)."""
  states = [n for n in summary["states"] if n]
  designs_ = list(config.study.state_designs)
  fig, axes = plt.subplots(len(labels), len(designs_), figsize=(5.5 * len(designs_),
                                                                 4 * len(labels)),
                           constrained_layout=True, squeeze=False)
  for i, l in enumerate(labels):
    for j, d in enumerate(designs_):
      ax = axes[i, j]
      runs = [(n, summary["states"][n]["horizon"][d]) for n in states]
      if d in summary["horizon"]:
        runs.append(("main", summary["horizon"][d]))
      for n, h in runs:
        truth = np.asarray(h[l]["truth_mean"], np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
          pct = 100 * np.asarray(h[l]["bias"]) / truth
          half = 196 * np.asarray(h[l]["bias_se"]) / np.abs(truth)
        line, = ax.plot(h["step"], pct, marker=".", label=n)
        ax.fill_between(h["step"], pct - half, pct + half, color=line.get_color(), alpha=0.12)
      ax.axhline(0, color="gray", lw=0.8)
      ax.set_title(f"{d}, {l}: bias along the horizon by production state", fontsize=9)
      ax.set_xlabel("step")
      ax.set_ylabel("bias (% of the state's true GTE; ± 1.96 se)")
      ax.legend(fontsize=7)
  save_figure(fig, out_dir / "states")


def _pretraining(summary, out_dir, labels):
  curve = summary["pretrain"]["curve"]
  labels = list(curve["train_loss"])  # The production models: labels, or <arm>.<label>.
  if not curve["train_loss"][labels[0]]:
    return
  fig, axes = _axes(len(labels) + 1)
  epochs = np.arange(1, len(curve["train_loss"][labels[0]]) + 1)
  for ax, l in zip(axes[0], labels):
    ax.plot(epochs, descriptive.finite_mean(curve["val"][f"{l}/loss"], 1), marker=".",
            label="validation")
    ax.plot(epochs, descriptive.finite_mean(curve["train_loss"][l], 1), ls="--",
            label="training (models still training)")
    ax.set_title(f"pretraining: {l} loss per epoch (mean over repetitions)")
    ax.set_ylabel("loss")
  for key, per_epoch in curve["val"].items():
    if not key.endswith("/loss"):
      axes[0, -1].plot(epochs, descriptive.finite_mean(per_epoch, 1), marker=".",
                       label=f"val {key}")
  axes[0, -1].set_title("pretraining: validation AUC / relative error")
  axes[0, -1].set_ylabel("AUC; relative error (no unit)")
  for ax in axes[0]:
    ax.set_xlabel("epoch")
    ax.legend(fontsize=7)
  save_figure(fig, out_dir / "pretraining")


def figures(config, summary, out_dir):
  labels = list(config.labels)
  main = point_key(config.experiment.p_treatment, 1.0)
  _main_bias(config, summary, out_dir, labels, main)
  _sweeps(config, summary, out_dir, labels)
  _horizon(config, summary, out_dir, labels)
  if "states" in summary:
    _states(config, summary, out_dir, labels)
  _pretraining(summary, out_dir, labels)
