"""A study (SPEC §6): the global truth and the A/B designs on the same data and seeds.

Every run is an ordinary workdir under `<study>/runs/`; a finished run (its result.json
written for the same config) is reused, so an interrupted study continues where it stopped.
"""

import json
import pathlib
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from gtesim import io
from gtesim import logs
from gtesim import simulation
from gtesim.errors import InputError

log = logs.get_logger("study")


def _variant(config, mode, p=None, aa=False, frozen=False):
  c = config.copy_and_resolve_references()
  with c.unlocked():
    del c["study"]
  c.mode = mode
  if p is not None:
    c.experiment.p_treatment = p
  if aa:
    for label in c.labels.values():
      label.alpha_T = label.alpha_C
  if frozen:
    c.sim.train_models = False
  return c


def plan(config) -> dict:
  """Run name -> config of every run the study needs."""
  study = config.study
  for design in study.designs:
    if design not in ("pooling", "splitting", "snapshot", "weighting"):
      raise InputError(f"config key study.designs holds '{design}'; use pooling, splitting, "
                       "snapshot, weighting.")
  runs = {"global": _variant(config, "global")}
  if study.frozen_truth:
    runs["global-frozen"] = _variant(config, "global", frozen=True)
  main_p = config.experiment.p_treatment
  for p in sorted(set(study.p_values) | {main_p}):
    for design in study.designs:
      runs[f"{design}-p{p:g}"] = _variant(config, design, p)
  if study.aa:
    for design in study.designs:
      runs[f"aa-{design}-p{main_p:g}"] = _variant(config, design, main_p, aa=True)
  return runs


def _finished(workdir: pathlib.Path, config) -> bool:
  if not (workdir / "result.json").exists() or not (workdir / "config.json").exists():
    return False
  return json.loads((workdir / "config.json").read_text()) == json.loads(
      config.to_json_best_effort())


def run(config, out_dir) -> dict:
  """Runs (or reuses) every run of the study and writes study.json, report.md, figures."""
  out_dir = pathlib.Path(out_dir)
  runs = plan(config)
  results, t0 = {}, time.perf_counter()
  for i, (name, cfg) in enumerate(runs.items()):
    workdir = out_dir / "runs" / name
    if _finished(workdir, cfg):
      log.info("run %d/%d %s: already finished, reusing", i + 1, len(runs), name)
      results[name] = json.loads((workdir / "result.json").read_text())
      continue
    log.info("run %d/%d %s", i + 1, len(runs), name)
    results[name] = simulation.run(cfg, workdir)
    logs.setup(out_dir / "study.log")
  summary = summarize(config, results)
  summary["wall_s_runs"] = {n: r["timing"]["wall_s"] for n, r in results.items()}
  summary["wall_s_runs_total"] = float(sum(summary["wall_s_runs"].values()))
  log.info("%d runs, %.0f s of run time in all (%.0f s in this invocation)", len(runs),
           summary["wall_s_runs_total"], time.perf_counter() - t0)
  io.write_json(out_dir / "study.json", summary)
  figures(config, results, summary, out_dir)
  report(config, summary, out_dir)
  log.info("wrote %s", out_dir / "report.md")
  return summary


def _truth(result, label):
  g = np.asarray(result["gte"][label]["per_rep"])
  return {"mean": float(g.mean()), "sd": float(g.std(ddof=1)) if len(g) > 1 else 0.0,
          "se": float(g.std(ddof=1) / np.sqrt(len(g))) if len(g) > 1 else 0.0, "B": len(g)}


def _design_stats(result, truth):
  est = np.asarray(result["per_rep"])
  ci = np.asarray(result["ci95_per_rep"])
  b = len(est)
  sd = float(est.std(ddof=1)) if b > 1 else 0.0
  return {"mean": float(est.mean()), "bias": float(est.mean() - truth["mean"]),
          "bias_se": float(np.sqrt(sd ** 2 / b + truth["se"] ** 2)), "sd": sd,
          "rmse": float(np.sqrt(np.mean((est - truth["mean"]) ** 2))),
          "coverage": float(np.mean((ci[:, 0] <= truth["mean"]) & (truth["mean"] <= ci[:, 1]))),
          "mean_ci_width": float(np.mean(ci[:, 1] - ci[:, 0])), "B": b}


def summarize(config, results) -> dict:
  labels = list(config.labels)
  truth = {l: _truth(results["global"], l) for l in labels}
  out = {"name": config.study.name, "B": config.repetitions,
         "p_main": config.experiment.p_treatment, "assignment": config.experiment.assignment,
         "truth": truth, "designs": {}, "aa": {}}
  if "global-frozen" in results:
    out["truth_frozen"] = {l: _truth(results["global-frozen"], l) for l in labels}
  metrics = results["global"]["metrics_final_and_at_step_0"]
  out["models"] = {
      world: {k: v for k, v in m.items() if k.startswith("val/") and ("auc" in k or "rel" in k)}
      for world, m in metrics.items()}
  for name, result in results.items():
    if name.startswith("global"):
      continue
    if name.startswith("aa-"):
      design = result["mode"]
      out["aa"][design] = {}
      for l in labels:
        ci = np.asarray(result["gte"][l]["ci95_per_rep"])
        est = np.asarray(result["gte"][l]["per_rep"])
        out["aa"][design][l] = {
            "type_I_error": float(np.mean((ci[:, 0] > 0) | (ci[:, 1] < 0))),
            "mean": float(est.mean()), "sd": float(est.std(ddof=1)), "B": len(est)}
      continue
    key = f"p={result['p_treatment']:g}"
    out["designs"].setdefault(result["mode"], {})[key] = {
        l: _design_stats(result["gte"][l], truth[l]) for l in labels}
  return out


def figures(config, results, summary, out_dir):
  labels = list(config.labels)
  main = f"p={config.experiment.p_treatment:g}"
  designs = [d for d in config.study.designs if main in summary["designs"].get(d, {})]
  fig, axes = plt.subplots(1, len(labels), figsize=(6 * len(labels), 4.5),
                           constrained_layout=True, squeeze=False)
  for ax, label in zip(axes[0], labels):
    data = [results[f"{d}-p{config.experiment.p_treatment:g}"]["gte"][label]["per_rep"]
            for d in designs]
    truth = np.asarray(results["global"]["gte"][label]["per_rep"])
    ax.boxplot([truth] + data, tick_labels=["global truth"] + designs)
    ax.axhline(truth.mean(), color="red", ls="--", label="true GTE (mean over B)")
    ax.axhline(0, color="gray", lw=0.5)
    ax.set_title(f"{label}: estimates over B={summary['B']} repetitions ({main})")
    ax.legend(fontsize=8)
  _save(fig, out_dir / "boxplots")
  fig, axes = plt.subplots(1, len(labels), figsize=(6 * len(labels), 4.5),
                           constrained_layout=True, squeeze=False)
  for ax, label in zip(axes[0], labels):
    for d in designs:
      ps = sorted(summary["designs"][d], key=lambda k: float(k[2:]))
      xs = [float(k[2:]) for k in ps]
      ys = [summary["designs"][d][k][label]["mean"] for k in ps]
      es = [1.96 * summary["designs"][d][k][label]["sd"] / np.sqrt(summary["B"]) for k in ps]
      ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=d)
    ax.axhline(summary["truth"][label]["mean"], color="red", ls="--", label="true GTE")
    ax.set_xlabel("p_treatment")
    ax.set_title(f"{label}: mean estimate vs p (±1.96 se)")
    ax.legend(fontsize=8)
  _save(fig, out_dir / "p_sweep")


def _save(fig, stem):
  for suffix in (".png", ".svg"):
    with io.atomic_path(f"{stem}{suffix}") as tmp:
      fig.savefig(tmp, format=suffix[1:], dpi=110)
  plt.close(fig)


def _fmt(x):
  return f"{x:.4g}"


def report(config, summary, out_dir):
  """report.md: the tables; `analysis.md` beside it (hand-written) is included verbatim."""
  labels = list(config.labels)
  lines = [f"# Study `{summary['name']}`", "",
           f"B = {summary['B']} repetitions per run, assignment `{summary['assignment']}`, "
           f"main p_treatment = {summary['p_main']}; {len(summary['wall_s_runs'])} runs, "
           f"{summary['wall_s_runs_total'] / 60:.0f} min of run time. Command: "
           "`python scripts/study.py --config configs/study.py`.", "",
           "## The truth (global mode)", "",
           "| label | true GTE (mean over B) | sd | se | frozen-model GTE (mean) | sd |",
           "|---|---|---|---|---|---|"]
  for l in labels:
    t = summary["truth"][l]
    f = summary.get("truth_frozen", {}).get(l, {"mean": float("nan"), "sd": float("nan")})
    lines.append(f"| {l} | {_fmt(t['mean'])} | {_fmt(t['sd'])} | {_fmt(t['se'])} | "
                 f"{_fmt(f['mean'])} | {_fmt(f['sd'])} |")
  lines += ["", "Validation metrics of the global worlds' models (mean over B; `@0` = right "
            "after pretraining):", ""]
  for world, m in summary["models"].items():
    lines.append(f"- {world}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in m.items()
                                            if v is not None))
  lines += ["", "## Designs against the truth", "",
            "bias = mean estimate − true GTE (± its standard error), sd over repetitions, "
            "RMSE against the true GTE, coverage of the 95% CI over the true GTE.", ""]
  for l in labels:
    lines += [f"### {l}", "", "| design | p | mean estimate | bias ± se | sd | RMSE | coverage |"
              " mean CI width |", "|---|---|---|---|---|---|---|---|"]
    for d, by_p in summary["designs"].items():
      for key in sorted(by_p, key=lambda k: float(k[2:])):
        s = by_p[key][l]
        lines.append(f"| {d} | {key[2:]} | {_fmt(s['mean'])} | {_fmt(s['bias'])} ± "
                     f"{_fmt(s['bias_se'])} | {_fmt(s['sd'])} | {_fmt(s['rmse'])} | "
                     f"{s['coverage']:.2f} | {_fmt(s['mean_ci_width'])} |")
    lines.append("")
  if summary["aa"]:
    lines += ["## A/A (alpha_T = alpha_C: the true GTE is exactly 0)", "",
              "| design | label | type-I error (5% level) | mean estimate | sd |",
              "|---|---|---|---|---|"]
    for d, by_label in summary["aa"].items():
      for l, s in by_label.items():
        lines.append(f"| {d} | {l} | {s['type_I_error']:.2f} | {_fmt(s['mean'])} | "
                     f"{_fmt(s['sd'])} |")
    lines.append("")
  lines += ["## Figures", "", "![box plots](boxplots.png)", "", "![p sweep](p_sweep.png)", ""]
  analysis = out_dir / "analysis.md"
  if analysis.exists():
    lines += ["## Analysis", "", analysis.read_text().strip(), ""]
  with io.atomic_path(out_dir / "report.md") as tmp:
    tmp.write_text("\n".join(lines))
