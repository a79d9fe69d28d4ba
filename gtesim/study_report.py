"""A study's statistics (study.json), figures and report.md, from the jobs' histories.

Every number is paired: a design's estimate in repetition b is scored against the truth of
repetition b at the same alpha gap (see `paired`). The horizon block repeats this at every
validation step, with the estimate and the truth both cumulative up to that step.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from gtesim import designs
from gtesim import estimators
from gtesim import io
from gtesim import metrics_np
from gtesim import outputs
from gtesim import paired

TRUTH_FROZEN_NAME = "policy effect at the pretrained model"


def point_key(p, gap) -> str:
  return f"p={p:g},gap={gap:g}"


def _truth_by_gap(job, history, labels) -> dict:
  """{gap: {label: [B] true GTE}} of a global job (gap 0: exactly 0, GT is GC)."""
  out = {}
  for s, (_, gap) in enumerate(job.worlds.points):
    g = outputs.global_point(labels, history, job.worlds, s)["gte"]
    out[gap] = {l: np.asarray(g[l]["per_rep"]) for l in labels}
  out[0.0] = {l: np.zeros(history.n_reps) for l in labels}
  return out


def _truth_noise(job, history, labels, n_blocks) -> dict:
  """{gap: {label: mean over repetitions of the batch-means SE of GT - GC}}: how noisy one
  repetition's truth is (its worlds see finitely many recommendations)."""
  s, gc = history.steps, job.worlds.n_worlds - 1
  out = {}
  for w, (_, gap) in enumerate(job.worlds.points):
    both = [w, gc]
    e = estimators.ab_estimate(s.outcome_sum[:, :, both, 0], s.outcome_sq[:, :, both, 0],
                               s.n_recs[:, :, both, 0], None, n_blocks, estimators.LEVEL)
    out[gap] = {l: float(np.mean(e["se"]["batch"][:, i])) for i, l in enumerate(labels)}
  return out


def _truth_upto(history, worlds, point, t, labels):
  """[B, L] true GTE over the first t steps at a global job's point."""
  s = history.steps
  means = estimators.world_means(s.outcome_sum[:t, :, :, 0], s.n_recs[:t, :, :, 0])
  return means[:, point] - means[:, worlds.n_worlds - 1]


def _estimate(history, point, t, e, n_blocks, design):
  """ab_estimate over the first t steps (user- and cluster-level variances of validation
  e)."""
  s = history.steps
  user_var = history.evals["user_var"][e][:, point] if "user_var" in history.evals else None
  unit_var, n_units = estimators.unit_variance(design, s.outcome_sum[:t, :, point],
                                               s.n_recs[:t, :, point], history.evals, e, point)
  return estimators.ab_estimate(s.outcome_sum[:t, :, point], s.outcome_sq[:t, :, point],
                                s.n_recs[:t, :, point], user_var, n_blocks, estimators.LEVEL,
                                unit_var, n_units)


def _point_stats(est, truth, labels) -> dict:
  return {l: {**paired.paired(est["estimate"][:, i], truth[l],
                              {m: est["se"][m][:, i] for m in estimators.METHODS},
                              {m: est["ci"][m][:, i] for m in estimators.METHODS}),
              "per_rep": est["estimate"][:, i].tolist(),
              "ci95_per_rep": {m: est["ci"][m][:, i].tolist() for m in estimators.METHODS}}
          for i, l in enumerate(labels)}


def summarize(config, jobs, histories, pretrain_report) -> dict:
  """study.json's content (see the README's Studies section for every key)."""
  labels = list(config.labels)
  by_name = {j.name: j for j in jobs}
  n_blocks = config.estimator.batch_blocks
  truth = _truth_by_gap(by_name["truth"], histories["truth"], labels)
  frozen = (_truth_by_gap(by_name["truth-frozen"], histories["truth-frozen"], labels)
            if "truth-frozen" in histories else None)
  truth_hist = histories["truth"]
  noise = _truth_noise(by_name["truth"], truth_hist, labels, n_blocks)
  out = {"name": config.study.name, "B": config.repetitions,
         "data": {"name": config.data.name, "size": (config.data.synthetic.kuairec_size
                                                    if config.data.name == "synthetic-kuairec"
                                                    else config.data.synthetic.size)
                  if config.data.name.startswith("synthetic") else config.data.root},
         "environment": {"kind": config.sim.environment, "outcome": config.sim.outcome,
                         "retrieval": config.sim.retrieval},
         "p_main": config.experiment.p_treatment, "assignment": config.experiment.assignment,
         "n_steps": config.sim.n_steps, "batch_size": config.sim.batch_size,
         "pretrain": pretrain_report,
         "truth": {f"gap={g:g}": {l: outputs.summary(
             v[l], within_rep_se=noise.get(g, {}).get(l, 0.0)) for l in labels}
                   for g, v in sorted(truth.items())},
         "designs": {}, "aa": {}, "horizon": {}, "weight_model": {}}
  if frozen is not None:
    out["truth_frozen"] = {f"gap={g:g}": {l: outputs.summary(v[l]) for l in labels}
                           for g, v in sorted(frozen.items())}
    out["truth_frozen_label"] = TRUTH_FROZEN_NAME
  truth_worlds = by_name["truth"].worlds
  models = outputs.model_metrics(truth_hist, truth_worlds)
  out["models"] = {"GT": models["GT" + outputs.point_name(truth_worlds, 0)], "GC": models["GC"]}
  for job in jobs:
    if job.config.mode == "global":
      continue
    h = histories[job.name]
    entry = out["designs"][job.name] = {}
    for s, (p, gap) in enumerate(job.worlds.points):
      est = _estimate(h, s, h.n_steps, -1, n_blocks, designs.design_of(job.config))
      entry[point_key(p, gap)] = _point_stats(est, truth[gap], labels)
      if job.config.mode == "snapshot" and frozen is not None:
        entry[point_key(p, gap)]["vs_truth_frozen"] = _point_stats(est, frozen[gap], labels)
      if gap == 0.0:
        out["aa"][job.name] = {
            l: {"type_I_error": {m: 1.0 - v["coverage"][m] for m in estimators.METHODS},
                "mean": v["mean"], "sd": v["sd"], "B": v["B"], "p_treatment": p}
            for l, v in entry[point_key(p, gap)].items() if l in labels}
    out["horizon"][job.name] = _horizon(job, h, by_name["truth"], truth_hist, labels,
                                        n_blocks)
    if job.config.mode == "weighting":
      g = outputs.model_metrics(h, job.worlds)
      out["weight_model"][job.name] = {
          point_key(*job.worlds.points[s]): g["G" + outputs.point_name(job.worlds, s)]
          for s in range(len(job.worlds.points))}
  return out


def _horizon(job, history, truth_job, truth_hist, labels, n_blocks) -> dict:
  """Estimate and truth at every validation step of the main point (point 0 of both jobs)."""
  out = {"step": [], **{l: {"truth_mean": [], "estimate_mean": [], "bias": [], "bias_se": [],
                            "coverage": {m: [] for m in estimators.METHODS}} for l in labels}}
  for e, t in enumerate(history.eval_step):
    if t == 0:
      continue
    truth_t = _truth_upto(truth_hist, truth_job.worlds, 0, t, labels)
    est = _estimate(history, 0, t, e, n_blocks, designs.design_of(job.config))
    out["step"].append(int(t))
    for i, l in enumerate(labels):
      st = paired.paired(est["estimate"][:, i], truth_t[:, i],
                         {m: est["se"][m][:, i] for m in estimators.METHODS},
                         {m: est["ci"][m][:, i] for m in estimators.METHODS})
      out[l]["truth_mean"].append(st["truth_mean"])
      out[l]["estimate_mean"].append(st["mean"])
      out[l]["bias"].append(st["bias"])
      out[l]["bias_se"].append(st["bias_se"])
      for m in estimators.METHODS:
        out[l]["coverage"][m].append(st["coverage"][m])
  return out


# ---------------------------------------------------------------------------- figures


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
  outputs.save_figure(fig, out_dir / "errors")

  for sweep, xlabel in (("p", "p_treatment (alpha gap 1)"),
                        ("gap", f"alpha gap (p = {config.experiment.p_treatment:g})")):
    fig, axes = _axes(len(labels))
    for ax, l in zip(axes[0], labels):
      for d in names:
        pts = [(k, v) for k, v in summary["designs"][d].items()
               if (sweep == "p" and k.endswith("gap=1")) or
               (sweep == "gap" and k.startswith(f"p={config.experiment.p_treatment:g},"))]
        xs = [float(dict(x.split("=") for x in k.split(","))[sweep]) for k, _ in pts]
        order = np.argsort(xs)
        ys = np.array([v[l]["bias"] for _, v in pts])[order]
        es = 1.96 * np.array([v[l]["bias_se"] for _, v in pts])[order]
        ax.errorbar(np.asarray(xs)[order], ys, yerr=es, marker="o", capsize=3, label=d)
      ax.axhline(0, color="gray", lw=0.8)
      ax.set_xlabel(xlabel)
      ax.set_title(f"{l}: paired bias (± 1.96 se)")
      ax.legend(fontsize=8)
    outputs.save_figure(fig, out_dir / f"{sweep}_sweep")

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
  outputs.save_figure(fig, out_dir / "horizon")

  curve = summary["pretrain"]["curve"]
  if curve["train_loss"][labels[0]]:
    fig, axes = _axes(len(labels) + 1)
    epochs = np.arange(1, len(curve["train_loss"][labels[0]]) + 1)
    for ax, l in zip(axes[0], labels):
      ax.plot(epochs, metrics_np.finite_mean(curve["val"][f"{l}/loss"], 1), marker=".",
              label="validation")
      ax.plot(epochs, metrics_np.finite_mean(curve["train_loss"][l], 1), ls="--",
              label="training (models still training)")
      ax.set_title(f"pretraining: {l} loss per epoch (mean over repetitions)")
    for key, per_epoch in curve["val"].items():
      if not key.endswith("/loss"):
        axes[0, -1].plot(epochs, metrics_np.finite_mean(per_epoch, 1), marker=".",
                         label=f"val {key}")
    axes[0, -1].set_title("pretraining: validation AUC / relative error")
    for ax in axes[0]:
      ax.set_xlabel("epoch")
      ax.legend(fontsize=7)
    outputs.save_figure(fig, out_dir / "pretraining")


# ---------------------------------------------------------------------------- report


def _f(x, digits=4):
  return "—" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.{digits}g}"


def _methods(d, key):
  return " / ".join(_f(d[key][m], 3) for m in estimators.METHODS)


def report(config, summary, out_dir):
  """report.md: generated tables and figures, then the hand-written analysis.md verbatim."""
  labels = list(config.labels)
  main = point_key(config.experiment.p_treatment, 1.0)
  pre = summary["pretrain"]
  cost = summary["cost"]
  env = summary["environment"]
  epochs = summary["n_steps"] / summary["steps_per_epoch"]
  lines = [f"# Study `{summary['name']}`", "",
           f"Data `{summary['data']['name']}` ({summary['data']['size']}); environment "
           f"`{env['kind']}` ({env['outcome']} outcomes, {env['retrieval']} retrieval). "
           f"B = {summary['B']} repetitions, {summary['n_steps']} steps of "
           f"{summary['batch_size']} users per world ({epochs:g} epochs: every train user is "
           f"recommended to {epochs:g} times), assignment `{summary['assignment']}`, main "
           f"point {main}. Command: `{summary['command']}`. "
           "Every statistic pairs repetition b's estimate with repetition b's own truth.", "",
           "## Production model", "",
           f"Pretrained on {pre['rows']:,} logged rows per repetition, batch {pre['batch_size']}, "
           f"until the validation loss stopped improving (patience {pre['patience']}, at most "
           f"{pre['max_epochs']} epochs): {pre['epochs_run']} epochs run; best epoch (mean over "
           "repetitions) " + ", ".join(f"{l} {np.mean(v):.1f}"
                                      for l, v in pre["best_epoch"].items()) +
           "; converged: " + ", ".join(f"{l} {v:.0%}" for l, v in
                                       pre["converged_fraction"].items()) +
           f". The experiment trains on {summary['n_steps'] * summary['batch_size']:,} "
           "recommended items per world.", "",
           "Validation metrics (mean over repetitions; `@0` = the production model):", ""]
  for world in ("GT", "GC"):
    m = summary["models"].get(world, {})
    lines.append(f"- {world}: " + ", ".join(f"{k} {_f(v)}" for k, v in m.items()
                                           if k.startswith("val/") and v is not None))
  lines += ["", "![pretraining](pretraining.png)", "", "## The truth", "",
            "True GTE per recommendation (mean over B ± se; |mean|/se in brackets); sd over "
            "repetitions; within-rep se: the mean batch-means se of one repetition's GT − GC "
            "(how noisy a single repetition's truth is). Frozen: the same policies with models "
            f"fixed at the production state, the {TRUTH_FROZEN_NAME}.", "",
            "| gap | label | true GTE (trained) | sd | within-rep se | frozen models | sd |",
            "|---|---|---|---|---|---|---|"]
  for gap, by_label in summary["truth"].items():
    for l in labels:
      t = by_label[l]
      fz = summary.get("truth_frozen", {}).get(gap, {}).get(l)
      ratio = abs(t["mean"]) / t["se"] if t["se"] else float("nan")
      lines.append(f"| {gap[4:]} | {l} | {_f(t['mean'])} ± {_f(t['se'], 2)} ({_f(ratio, 3)}) | "
                   f"{_f(t['std'])} | {_f(t['within_rep_se'], 3)} | "
                   f"{_f(fz['mean']) if fz else '—'} ± "
                   f"{_f(fz['se'], 2) if fz else '—'} | {_f(fz['std']) if fz else '—'} |")
  lines += ["", f"## Designs at the main point ({main})", "",
            "bias = mean(est_b − GTE_b) ± its paired se; coverage and vif (sd of est_b − GTE_b "
            "over the mean standard error) per method: welch / user / batch / unit (the "
            "design's randomisation unit: clusters or switchback periods; — for the other "
            "designs).", ""]
  if "codiverted" in summary["designs"]:
    lines += ["Co-diverted's estimate is of another population than the truth: each arm's "
              "users are shown only that arm's videos (a share p_items of the catalogue for "
              "treatment, the rest for control), so it measures treatment-on-its-half minus "
              "control-on-the-other-half; the table scores it against the global GTE over the "
              "whole catalogue, the effect a launch would have.", ""]
  for l in labels:
    lines += [f"### {l}", "", "| design | mean estimate | bias ± se | sd | RMSE | coverage "
              "(w/u/b/unit) | vif (w/u/b/unit) |", "|---|---|---|---|---|---|---|"]
    for d, by_point in summary["designs"].items():
      s = by_point[main][l]
      lines.append(f"| {d} | {_f(s['mean'])} | {_f(s['bias'])} ± {_f(s['bias_se'], 2)} | "
                   f"{_f(s['sd'])} | {_f(s['rmse'])} | {_methods(s, 'coverage')} | "
                   f"{_methods(s, 'vif')} |")
      if "vs_truth_frozen" in by_point[main]:
        f = by_point[main]["vs_truth_frozen"][l]
        lines.append(f"| {d} vs {TRUTH_FROZEN_NAME} | {_f(f['mean'])} | {_f(f['bias'])} ± "
                     f"{_f(f['bias_se'], 2)} | {_f(f['sd'])} | {_f(f['rmse'])} | "
                     f"{_methods(f, 'coverage')} | {_methods(f, 'vif')} |")
    lines.append("")
  undefined = [f"{d} {k} ({v[labels[0]]['n_undefined']} of {summary['B']})"
               for d, by_point in summary["designs"].items() for k, v in by_point.items()
               if v[labels[0]].get("n_undefined")]
  if undefined:
    lines += ["Repetitions without an estimate (an arm got no recommendation: e.g. no treated "
              "cluster at small p), left out of that point's statistics: " +
              ", ".join(undefined) + ".", ""]
  lines += ["![errors](errors.png)", "", "## A/A (gap 0: the true GTE is exactly 0)", "",
            "| design | label | type-I error at 5% (welch / user / batch / unit) | mean estimate | "
            "sd |",
            "|---|---|---|---|---|"]
  for d, by_label in summary["aa"].items():
    for l, s in by_label.items():
      lines.append(f"| {d} | {l} | {_methods(s, 'type_I_error')} | {_f(s['mean'])} | "
                   f"{_f(s['sd'])} |")
  for sweep, title in (("p", "p sweep (alpha gap 1)"), ("gap", "alpha-gap sweep")):
    lines += ["", f"## {title}", "", "| design | point | label | bias ± se | RMSE | coverage "
              "(w/u/b/unit) |", "|---|---|---|---|---|---|"]
    for d, by_point in summary["designs"].items():
      for key, v in by_point.items():
        in_sweep = key.endswith(",gap=1") if sweep == "p" else key.startswith(
            f"p={config.experiment.p_treatment:g},")
        if not in_sweep:
          continue
        for l in labels:
          s = v[l]
          lines.append(f"| {d} | {key} | {l} | {_f(s['bias'])} ± {_f(s['bias_se'], 2)} | "
                       f"{_f(s['rmse'])} | {_methods(s, 'coverage')} |")
    lines += ["", f"![{sweep} sweep]({sweep}_sweep.png)"]
  lines += ["", "## Horizon (main point; cumulative estimate and truth at each validation)", "",
            "| design | label | " + " | ".join(
                f"step {t}" for t in next(iter(summary["horizon"].values()))["step"]) + " |",
            "|---|---|" + "---|" * len(next(iter(summary["horizon"].values()))["step"])]
  for d, h in summary["horizon"].items():
    for l in labels:
      lines.append(f"| {d} | {l} bias | " + " | ".join(
          f"{_f(b, 3)} ± {_f(s, 2)}" for b, s in zip(h[l]["bias"], h[l]["bias_se"])) + " |")
  first = next(iter(summary["horizon"].values()))
  for l in labels:
    lines.append(f"| truth | {l} | " + " | ".join(_f(t, 4) for t in first[l]["truth_mean"]) +
                 " |")
  lines += ["", "![horizon](horizon.png)", ""]
  if summary["weight_model"]:
    lines += ["## Weight model G (on each step's new items, last validation interval)", "",
              "| job | point | AUC | accuracy | loss |", "|---|---|---|---|---|"]
    for job, by_point in summary["weight_model"].items():
      for key, m in by_point.items():
        lines.append(f"| {job} | {key} | {_f(m['new/weight/auc'], 3)} | "
                     f"{_f(m['new/weight/accuracy'], 3)} | {_f(m['new/weight/loss'], 3)} |")
    lines.append("")
  lines += ["## Cost", "", "Wall time of each part when it ran (a reused part keeps the "
            "time it took; `setup` and `this invocation` are of the latest invocation).", "",
            "| part | wall s |", "|---|---|"]
  for name, seconds in cost.items():
    lines.append(f"| {name.removesuffix('_s').replace('_', ' ')} | {_f(seconds, 4)} |")
  lines.append("")
  analysis = out_dir / "analysis.md"
  if analysis.exists():
    lines += ["## Analysis", "", analysis.read_text().strip(), ""]
  with io.atomic_path(out_dir / "report.md") as tmp:
    tmp.write_text("\n".join(lines))
