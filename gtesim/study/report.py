"""A study's report.md: generated tables and figures, then the hand-written analysis.md."""

import numpy as np

from gtesim import designs
from gtesim import writing
from gtesim.stats.variance import METHODS
from gtesim.study.summary import TRUTH_FROZEN_NAME, point_key



def _f(x, digits=4):
  return "—" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.{digits}g}"


def _methods(d, key):
  return " / ".join(_f(d[key][m], 3) for m in METHODS)


def pct_text(s) -> str:
  """A bias as % of the truth with its se ("—" where undefined: the A/A)."""
  pct = s.get("bias_pct")
  if pct is None or not np.isfinite(pct):
    return "—"
  se = s.get("bias_pct_se")
  return f"{pct:+.1f}%" + ("" if se is None or not np.isfinite(se) else f" ± {se:.1f}")


def _signs(s) -> str:
  """Wrong-sign shares against the mean truth and against each repetition's own truth."""
  return f"{_f(s.get('wrong_sign'), 2)} / {_f(s.get('wrong_sign_own'), 2)}"


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
  for name in config.study.designs:  # What a design says of its own estimate.
    note = designs.DESIGNS.get(name).report_note
    if note and name in summary["designs"]:
      lines += [note, ""]
  for l in labels:
    lines += [f"### {l}", "", "| design | mean estimate | bias ± se | bias % of truth | "
              "wrong sign (vs mean truth / own rep's) | sd | RMSE | coverage (w/u/b/unit) | "
              "vif (w/u/b/unit) |",
              "|---|---|---|---|---|---|---|---|---|"]
    for d, by_point in summary["designs"].items():
      s = by_point[main][l]
      lines.append(f"| {d} | {_f(s['mean'])} | {_f(s['bias'])} ± {_f(s['bias_se'], 2)} | "
                   f"{pct_text(s)} | {_signs(s)} | "
                   f"{_f(s['sd'])} | {_f(s['rmse'])} | {_methods(s, 'coverage')} | "
                   f"{_methods(s, 'vif')} |")
      if "vs_truth_frozen" in by_point[main]:
        f = by_point[main]["vs_truth_frozen"][l]
        lines.append(f"| {d} vs {TRUTH_FROZEN_NAME} | {_f(f['mean'])} | {_f(f['bias'])} ± "
                     f"{_f(f['bias_se'], 2)} | {pct_text(f)} | {_signs(f)} | "
                     f"{_f(f['sd'])} | {_f(f['rmse'])} | "
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
        if not in_sweep or "eps=" in key:  # Exploration points have their own section.
          continue
        for l in labels:
          s = v[l]
          lines.append(f"| {d} | {key} | {l} | {_f(s['bias'])} ± {_f(s['bias_se'], 2)} | "
                       f"{_f(s['rmse'])} | {_methods(s, 'coverage')} |")
    lines += ["", f"![{sweep} sweep]({sweep}_sweep.png)"]
  if "truth_exploration" in summary:
    lines += ["", "## Exploration (epsilon-greedy; every other job at epsilon = "
              f"{config.sim.epsilon:g})", "",
              "The truth is rerun at each epsilon; a design's point at that epsilon is scored "
              "against it (its A/A at gap 0).", "",
              "| epsilon | label | true GTE | design | bias ± se | bias % of truth | wrong sign "
              "(mean / own) | coverage (w/u/b/unit) |", "|---|---|---|---|---|---|---|---|"]
    for eps_key, by_gap in summary["truth_exploration"].items():
      for l in labels:
        t = by_gap["gap=1"][l]
        for d, by_point in summary["designs"].items():
          for key, v in by_point.items():
            if key.endswith("," + eps_key):
              s = v[l]
              lines.append(f"| {eps_key[4:]} | {l} | {_f(t['mean'])} ± {_f(t['se'], 2)} | "
                           f"{d} {key.split(',')[1]} | {_f(s['bias'])} ± "
                           f"{_f(s['bias_se'], 2)} | {pct_text(s)} | "
                           f"{_signs(s)} | {_methods(s, 'coverage')} |")
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
  with writing.atomic_path(out_dir / "report.md") as tmp:
    tmp.write_text("\n".join(lines))
