"""A study's report.md: the generated verdict and tables, then the hand-written analysis.md.

Every share carries its Wilson interval and every other statistic its bootstrap or t
interval (docs/statistics.md); a method undefined in some repetitions shows over how many it
is summarised.
"""

import numpy as np

from gtesim import designs
from gtesim import writing
from gtesim.stats.variance import METHODS
from gtesim.study.summary import TRUTH_FROZEN_NAME, point_key

_M = "w/u/b/unit"


def _f(x, digits=4):
  return "—" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.{digits}g}"


def _ci(ci, digits=3):
  if ci is None or any(np.isnan(c) for c in ci):
    return ""
  text = [("∞" if c > 0 else "−∞") if np.isinf(c) else _f(c, digits) for c in ci]
  return f" [{text[0]}, {text[1]}]"


def _pct(x, ci):
  if x is None or not np.isfinite(x):
    return "—"
  ci_text = (f" [{ci[0]:+.1f}, {ci[1]:+.1f}]" if ci and all(np.isfinite(c) for c in ci)
             else "")
  return f"{x:+.1f}%{ci_text}"


def pct_text(s) -> str:
  """A design entry's bias as % of the truth with its bootstrap CI ("—" in the A/A)."""
  return _pct(s.get("bias_pct"), s.get("bias_pct_ci"))


def _share(s):
  """A share with its Wilson interval, and its count when it is not over every repetition."""
  if not s or not s["n"]:
    return "—"
  return f"{s['value']:.2f}{_ci(s['ci'], 2)}"


def _methods(d, key, b, ci_key=None):
  """Per method: the value [CI] and, where the method is defined in fewer repetitions, n."""
  parts = []
  named = tuple(d[key]) != tuple(METHODS)  # An estimator's own methods: each named.
  for m in d[key]:
    v = d[key][m]
    if v is None or not np.isfinite(v):
      parts.append(f"{m} —" if named else "—")
      continue
    text = _f(v, 3) + (_ci(d[ci_key][m], 2) if ci_key else "")
    n = d["n_method"][m]
    parts.append((f"{m} " if named else "") + text + (f" (n={n})" if n != b else ""))
  return " / ".join(parts)


def _default_method(by_method) -> str:
  """The method a table shows where no verdict chose one: the user SE, or an estimator's
  first own method."""
  return "user" if "user" in by_method else next(iter(by_method))


def _all_methods(summary) -> list:
  """Every SE method of the study's cells, METHODS first (estimators may add their own)."""
  out = list(METHODS)
  for by_point in summary["designs"].values():
    for v in by_point.values():
      for entry in v.values():
        if isinstance(entry, dict) and "n_method" in entry:
          out += [m for m in entry["n_method"] if m not in out]
  return out


def _best_loss(pre, label) -> str:
  """A label's best validation loss, or each arm's where the arms rank with their own models
  (`treatment.<label>`, `control.<label>`)."""
  losses = pre["best_val_loss"]
  if label in losses:
    return _f(losses[label], 4)
  return " / ".join(f"{arm[0].upper()} {_f(losses[f'{arm}.{label}'], 4)}"
                    for arm in ("treatment", "control"))


def _verdict(config, summary) -> list:
  lines = ["## Verdict", "",
           f"At the main point, against each repetition's truth (the mean of "
           f"{summary['truth_replicates']} global replicate(s)), B = {summary['B']}. Designs "
           "in order of RMSE; ΔRMSE: minus the lowest (paired bootstrap se; a difference "
           "within 2 se does not rank them); SE: the method whose inflation factor is closest "
           "to 1, its factor [95% CI] and the out-of-sample coverage of the widened interval; "
           "calibrated: the A/A type-I CI holds 0.05 and the factor's CI holds 1 (— : not "
           "tested: the design has no A/A in this study, or too few repetitions, the type-I "
           "CI reaching 0.10 or the factor's interval not closing); power and wrong-sign: shares of repetitions whose "
           "widened interval excludes 0 on the truth's side / the other side; A/A launch: its "
           "interval as is lies above 0 with no effect (0.025 nominal).", ""]
  for l, rows in summary["verdict"].items():
    unit = config.labels[l].get("unit", "")
    lines += [f"### {l}" + (f" ({unit})" if unit else ""), "",
              "| design | RMSE [CI] | ΔRMSE ± se | bias % of truth [CI] | SE | inflation [CI] | "
              "out-of-sample coverage | A/A type-I | calibrated | power | wrong sign, significant "
              "| A/A launch | short users T / C |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
      vs = r.get("vs_best")
      delta = "lowest" if vs is None else f"{vs['rmse']:+.3g} ± {_f(vs['rmse_se'], 2)}"
      st = r.get("starvation")
      short = f"{st['T']['short']:.1%} / {st['C']['short']:.1%}" if st else "—"
      if r["method"] is None:
        lines.append(f"| {r['design']} | {_f(r['rmse'])}{_ci(r['rmse_ci'])} | {delta} | "
                     f"{_pct(r['bias_pct'], r['bias_pct_ci'])} | none defined in every "
                     f"repetition | — | — | — | — | — | — | — | {short} |")
        continue
      calibrated = {True: "yes", False: "no", None: "—"}[r["calibrated"]]
      dec = r["decisions"]
      lines.append(
          f"| {r['design']} | {_f(r['rmse'])}{_ci(r['rmse_ci'])} | {delta} | "
          f"{_pct(r['bias_pct'], r['bias_pct_ci'])} | {r['method']} | "
          f"{_f(r['factor'], 3)}{_ci(r['factor_ci'])} | "
          f"{_f(r['oos_coverage'], 2)}{_ci(r['oos_ci'], 2)} | "
          f"{_f(r.get('type_i'), 2)}{_ci(r.get('type_i_ci'), 2)} | {calibrated} | "
          f"{_share(dec['power'])} | {_share(dec['wrong_significant'])} | "
          f"{_share(r.get('false_launch'))} | {short} |")
    lines.append("")
  return lines


def _truth(config, summary, labels) -> list:
  k = summary["truth_replicates"]
  lines = ["## The truth", "",
           f"True GTE per recommendation: each repetition's is the mean of {k} global "
           "replicate(s) from its production model with independent draws (users, candidates, "
           "outcomes; independent of the designs' draws too). Mean over B ± se; truth se: the "
           "root mean square over repetitions of each repetition's truth SE, after "
           f"replication (sd of the {k} replicates / √{k}" + ("" if k > 1 else
           ": with one replicate, its batch-means se") + ") and of a single replicate (its "
           "batch-means se); beside it the root mean square of the main design's user SE, "
           "which it should be at most a third of. Frozen: the same policies with models "
           f"fixed at the production state, the {TRUTH_FROZEN_NAME}.", "",
           "| gap | label | true GTE (trained) | sd over reps | truth se: single → replicated "
           "| estimate's user se (pooling) | frozen models | expected outcomes |",
           "|---|---|---|---|---|---|---|---|"]
  main = point_key(config.experiment.p_treatment, 1.0)
  first = next(iter(summary["designs"].values()), {})
  for gap, by_label in summary["truth"].items():
    if gap == "gap=0":  # Exactly 0: GT is GC.
      continue
    for l in labels:
      t = by_label[l]
      fz = summary.get("truth_frozen", {}).get(gap, {}).get(l)
      ex = summary.get("truth_expected", {}).get(gap, {}).get(l)
      est_se = (first.get(main, {}).get(l, {}).get("se_per_rep", {}).get("user")
                if gap == "gap=1" else None)
      est_rms = (_f(float(np.sqrt(np.nanmean(np.square(est_se)))), 3)
                 if est_se is not None else "—")
      lines.append(
          f"| {gap[4:]} | {l} | {_f(t['mean'])} ± {_f(t['se'], 2)} | {_f(t['std'])} | "
          f"{_f(t.get('single_replicate_se'), 3)} → {_f(t.get('truth_se'), 3)} | {est_rms} | "
          f"{_f(fz['mean']) + ' ± ' + _f(fz['se'], 2) if fz else '—'} | "
          f"{_f(ex['mean']) + ' ± ' + _f(ex['se'], 2) if ex else '—'} |")
  return lines + [""]


def _main_tables(config, summary, labels, main) -> list:
  b = summary["B"]
  lines = [f"## Designs at the main point ({main})", "",
           "bias = mean(est_b − T_b) [t CI]; RMSE [bootstrap CI]; coverage [Wilson CI] and "
           "coverage net of the truth's noise (the interval widened by the truth's SE: nominal "
           "0.95 for a right SE) per method (welch / user / batch / unit: the design's "
           "randomisation unit, clusters or switchback periods; — for the other designs); vif "
           "net = sqrt(var(d) − mean(truth se²)) / mean(se). (n=…): the method is undefined in "
           "the other repetitions and summarised over these.", ""]
  for name in config.study.designs:
    note = designs.DESIGNS.get(name).reporting.report_note
    if note and name in summary["designs"]:
      lines += [note, ""]
  for l in labels:
    lines += [f"### {l}", "", f"| design | mean estimate | bias [CI] | bias % of truth [CI] | "
              f"RMSE [CI] | coverage ({_M}) | coverage net ({_M}) | vif net ({_M}) |",
              "|---|---|---|---|---|---|---|---|"]
    for d, by_point in summary["designs"].items():
      if main not in by_point:
        continue
      for name, s in [(d, by_point[main][l])] + (
          [(f"{d} vs {TRUTH_FROZEN_NAME}", by_point[main]["vs_truth_frozen"][l])]
          if "vs_truth_frozen" in by_point[main] else []):
        lines.append(f"| {name} | {_f(s['mean'])} | {_f(s['bias'])}{_ci(s['bias_ci'])} | "
                     f"{_pct(s['bias_pct'], s['bias_pct_ci'])} | "
                     f"{_f(s['rmse'])}{_ci(s['rmse_ci'])} | "
                     f"{_methods(s, 'coverage', s['B'], 'coverage_ci')} | "
                     f"{_methods(s, 'coverage_net', s['B'], 'coverage_net_ci')} | "
                     f"{_methods(s, 'vif_net', s['B'])} |")
    lines.append("")
  undefined = [f"{d} {k} ({v[labels[0]]['n_undefined']} of {b})"
               for d, by_point in summary["designs"].items() for k, v in by_point.items()
               if v[labels[0]].get("n_undefined")]
  if undefined:
    lines += ["Repetitions without an estimate (an arm got no recommendation: e.g. no treated "
              "cluster at small p), left out of that point's statistics and counted: " +
              ", ".join(undefined) + ".", ""]
  methods = _all_methods(summary)
  lines += ["### Calibration under treatment", "",
            "Inflation factor c per method [95% CI from order statistics] (bootstrap CI) (the "
            "smallest c with which est ± q·sqrt(c²·se² + truth se²) holds the truth in 95% of "
            "repetitions; inf: too few repetitions for the interval to close) and its "
            "out-of-sample coverage [Wilson CI] (fitted on one half of the repetitions, "
            "measured on the other, both ways).", "",
            "| design | label | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
  for d, by_point in summary["designs"].items():
    if main not in by_point:
      continue
    for l in labels:
      s = by_point[main][l]
      cells = []
      for m in methods:
        inf = s["inflation"].get(m)
        if not inf or not np.isfinite(inf["factor"]):
          cells.append("—")
          continue
        n = s["n_method"].get(m)
        cells.append(f"{_f(inf['factor'], 3)}{_ci(inf['ci'])} (bootstrap"
                     f"{_ci(inf['ci_bootstrap'])}); oos "
                     f"{_f(inf['oos']['coverage'], 2)}{_ci(inf['oos']['ci'], 2)}" +
                     (f" (n={n})" if n != s["B"] else ""))
      lines.append(f"| {d} | {l} | " + " | ".join(cells) + " |")
  lines += ["", "### Decisions (each method's interval as is)", "",
            "Shares of repetitions [Wilson CI]: the estimate has its truth's sign; the interval "
            "excludes 0 on the truth's side (power) / on the other side.", "",
            "| design | label | method | sign agrees | power | wrong sign, significant |",
            "|---|---|---|---|---|---|"]
  for d, by_point in summary["designs"].items():
    if main not in by_point:
      continue
    for l in labels:
      s = by_point[main][l]
      for m, dec in s["decision"].items():
        lines.append(f"| {d} | {l} | {m} | {_share(dec['sign_agree'])} | "
                     f"{_share(dec['power'])} | {_share(dec['wrong_significant'])} |")
  lines += ["", "### Paired differences between designs", "",
            "x − y over the repetitions both define: bias difference ± its paired se (p: "
            "two-sided, normal) and RMSE difference ± its paired bootstrap se [CI].", "",
            "| label | x − y | Δbias ± se | p | ΔRMSE ± se [CI] |", "|---|---|---|---|---|"]
  for l, pairs in summary["differences"].items():
    for key, dd in pairs.items():
      lines.append(f"| {l} | {key} | {_f(dd['bias'])} ± {_f(dd['bias_se'], 2)} | "
                   f"{_f(dd['bias_p'], 2)} | {_f(dd['rmse'])} ± {_f(dd['rmse_se'], 2)}"
                   f"{_ci(dd['rmse_ci'])} |")
  lines += ["", "### Candidate starvation", "",
            "Share of sampled users per arm with fewer than sim.n_candidate candidates "
            "(short) and with none (exhausted: no recommendation), over every step.", "",
            "| design | point | short T | short C | exhausted T | exhausted C |",
            "|---|---|---|---|---|---|"]
  for d, by_point in summary["starvation"].items():
    for key, st in by_point.items():
      lines.append(f"| {d} | {key} | {st['T']['short']:.2%} | {st['C']['short']:.2%} | "
                   f"{st['T']['exhausted']:.2%} | {st['C']['exhausted']:.2%} |")
  return lines + ["", "![errors](errors.png)", ""]


def _aa(summary) -> list:
  lines = ["## A/A (gap 0: the true GTE is exactly 0)", "",
           f"Type-I error at 5% [Wilson CI] per method ({_M}); false launch: the interval lies "
           "above 0 (0.025 nominal).", "",
           "| design | label | type-I error | false launch (user) | mean estimate | sd |",
           "|---|---|---|---|---|---|"]
  for d, by_label in summary["aa"].items():
    for l, s in by_label.items():
      parts = []
      named = tuple(s["type_I_error"]) != tuple(METHODS)
      for m in s["type_I_error"]:
        v = s["type_I_error"][m]
        if v is None or not np.isfinite(v):
          parts.append(f"{m} —" if named else "—")
          continue
        n = s["n_method"][m]
        parts.append((f"{m} " if named else "") + f"{v:.3f}{_ci(s['type_I_ci'][m], 2)}" + (f" (n={n})" if n != s["B"] else ""))
      lines.append(f"| {d} | {l} | {' / '.join(parts)} | "
                   f"{_share(s['false_launch'].get('user'))} | {_f(s['mean'])} | {_f(s['sd'])} |")
  return lines + [""]


def _sweeps(config, summary, labels) -> list:
  lines = []
  for sweep, title in (("p", "p sweep (alpha gap 1)"), ("gap", "alpha-gap sweep")):
    rows = []
    for d, by_point in summary["designs"].items():
      for key, v in by_point.items():
        in_sweep = key.endswith(",gap=1") if sweep == "p" else key.startswith(
            f"p={config.experiment.p_treatment:g},")
        if not in_sweep or "eps=" in key:  # Exploration points have their own section.
          continue
        for l in labels:
          s = v[l]
          rows.append(f"| {d} | {key} | {l} | {_f(s['bias'])}{_ci(s['bias_ci'])} | "
                      f"{_pct(s['bias_pct'], s['bias_pct_ci'])} | {_f(s['rmse'])} | "
                      f"{_methods(s, 'coverage', s['B'], 'coverage_ci')} |")
    lines += ["", f"## {title}", "", "| design | point | label | bias [CI] | bias % [CI] | "
              f"RMSE | coverage ({_M}) |", "|---|---|---|---|---|---|---|", *rows]
    if (sweep == "p" and len(config.study.p_values) > 1) or (
        sweep == "gap" and len([g for g in config.study.alpha_gaps if g != 0]) > 1):
      lines += ["", f"![{sweep} sweep]({sweep}_sweep.png)"]
  return lines


def _states(config, summary, labels, main) -> list:
  """The production-state sweep (study.production_states): the mechanism "the less the
  production model knows, the more the experiment's own data moves it", measured."""
  states = summary["states"]
  lines = ["## Mechanism: the production model's state", "",
           "Each state pretrains its own production models (rows, at most epochs) and runs the "
           "truth (trained and frozen models) and the designs at the main point from them; "
           "the main study's state (every row, to convergence) is the last row. trained − "
           "frozen: how much the models' learning during the experiment moves the true GTE "
           "(paired over repetitions). Bias as % of that state's own truth [bootstrap CI].", ""]
  designs_ = list(config.study.state_designs)
  for l in labels:
    lines += [f"### {l}", "", "| state | rows | epochs run | best val loss | B | true GTE | "
              "trained − frozen | " + " | ".join(f"{d}: bias % [CI]" for d in designs_) + " |",
              "|---|---|---|---|---|---|---|" + "---|" * len(designs_)]
    for name, st in list(states.items()) + []:
      if name == "":
        continue
      t = st["truth"]["gap=1"][l]
      fz = st.get("truth_frozen", {}).get("gap=1", {}).get(l)
      diff = "—"
      if fz:
        d = np.asarray(t["per_rep"]) - np.asarray(fz["per_rep"])
        diff = f"{_f(d.mean())} ± {_f(d.std(ddof=1) / np.sqrt(len(d)), 2)}"
      cells = [pct_text(st["designs"][d][main][l]) for d in designs_]
      pre = st["pretrain"]
      lines.append(f"| {name} | {pre['rows']:,} | {pre['epochs_run']} | "
                   f"{_best_loss(pre, l)} | {st['B']} | {_f(t['mean'])} ± "
                   f"{_f(t['se'], 2)} | {diff} | " + " | ".join(cells) + " |")
    pre = states[""]["pretrain"]
    t = summary["truth"]["gap=1"][l]
    fz = summary.get("truth_frozen", {}).get("gap=1", {}).get(l)
    diff = "—"
    if fz:
      d = np.asarray(t["per_rep"]) - np.asarray(fz["per_rep"])
      diff = f"{_f(d.mean())} ± {_f(d.std(ddof=1) / np.sqrt(len(d)), 2)}"
    cells = [pct_text(summary["designs"][d][main][l]) if d in summary["designs"] else "—"
             for d in designs_]
    lines += [f"| main | {pre['rows']:,} | {pre['epochs_run']} | "
              f"{_best_loss(pre, l)} | {summary['B']} | {_f(t['mean'])} ± "
              f"{_f(t['se'], 2)} | {diff} | " + " | ".join(cells) + " |", ""]
  lines += ["![states](states.png)", ""]
  return lines


def report(config, summary, out_dir):
  """report.md: generated verdict, tables and figures, then analysis.md verbatim."""
  labels = list(config.labels)
  main = point_key(config.experiment.p_treatment, 1.0)
  pre = summary["pretrain"]
  cost = summary["cost"]
  env = summary["environment"]
  epochs = summary["n_steps"] / summary["steps_per_epoch"]
  commit = summary.get("package_commit", {})
  lines = [f"# Study `{summary['name']}`", "",
           f"Data `{summary['data']['name']}` ({summary['data']['size']}); environment "
           f"`{env['kind']}` ({env['outcome']} outcomes, {env['retrieval']} retrieval). "
           f"B = {summary['B']} repetitions, {summary['n_steps']} steps of "
           f"{summary['batch_size']} users per world ({epochs:g} epochs: every train user is "
           f"recommended to {epochs:g} times), assignment `{summary['assignment']}`, main "
           f"point {main}. Command: `{summary['command']}`. Package code: "
           f"`{commit.get('package') or 'unknown'}`" +
           (" with uncommitted changes" if commit.get("dirty") else "") + ". "
           "Every statistic pairs repetition b's estimate with repetition b's own truth.", ""]
  lines += _verdict(config, summary)
  lines += ["## Production model", "",
            f"Pretrained on {pre['rows']:,} logged rows per repetition, batch "
            f"{pre['batch_size']}, until the validation loss stopped improving (patience "
            f"{pre['patience']}, at most {pre['max_epochs']} epochs): {pre['epochs_run']} epochs "
            "run; best epoch (mean over repetitions) " + ", ".join(
                f"{l} {np.mean(v):.1f}" for l, v in pre["best_epoch"].items()) +
            "; converged: " + ", ".join(f"{l} {v:.0%}" for l, v in
                                        pre["converged_fraction"].items()) +
            f". The experiment trains on {summary['n_steps'] * summary['batch_size']:,} "
            "recommended items per world.", "",
            "Validation metrics (mean over repetitions; `@0` = the production model):", ""]
  for world in ("GT", "GC"):
    m = summary["models"].get(world, {})
    lines.append(f"- {world}: " + ", ".join(f"{k} {_f(v)}" for k, v in m.items()
                                           if k.startswith("val/") and v is not None))
  lines += ["", "![pretraining](pretraining.png)", ""]
  lines += _truth(config, summary, labels)
  lines += _main_tables(config, summary, labels, main)
  lines += _aa(summary)
  if "states" in summary:
    lines += _states(config, summary, labels, main)
  lines += _sweeps(config, summary, labels)
  if "truth_exploration" in summary:
    lines += ["", "## Exploration (epsilon-greedy; every other job at epsilon = "
              f"{config.sim.epsilon:g})", "",
              "The truth is rerun at each epsilon; a design's point at that epsilon is scored "
              "against it (its A/A at gap 0).", "",
              "| epsilon | label | true GTE | design | bias [CI] | bias % of truth [CI] | "
              "coverage (user) |", "|---|---|---|---|---|---|---|"]
    for eps_key, by_gap in summary["truth_exploration"].items():
      for l in labels:
        t = by_gap["gap=1"][l]
        for d, by_point in summary["designs"].items():
          for key, v in by_point.items():
            if key.endswith("," + eps_key):
              s = v[l]
              m = _default_method(s["coverage"])
              lines.append(f"| {eps_key[4:]} | {l} | {_f(t['mean'])} ± {_f(t['se'], 2)} | "
                           f"{d} {key.split(',')[1]} | {_f(s['bias'])}{_ci(s['bias_ci'])} | "
                           f"{_pct(s['bias_pct'], s['bias_pct_ci'])} | "
                           f"{_f(s['coverage'][m], 2)}{_ci(s['coverage_ci'][m], 2)}"
                           + ("" if m == "user" else f" ({m})") + " |")
  steps = next(iter(summary["horizon"].values()))["step"]
  lines += ["", "## Horizon (main point; cumulative estimate and truth at each validation)", "",
            "Bias ± se, then the coverage of the verdict's SE method as is [Wilson CI].", "",
            "| design | label | " + " | ".join(f"step {t}" for t in steps) + " |",
            "|---|---|" + "---|" * len(steps)]
  methods = {l: {r["design"]: r["method"] for r in rows}
             for l, rows in summary["verdict"].items()}
  for d, h in summary["horizon"].items():
    for l in labels:
      lines.append(f"| {d} | {l} bias | " + " | ".join(
          f"{_f(b, 3)} ± {_f(s, 2)}" for b, s in zip(h[l]["bias"], h[l]["bias_se"])) + " |")
      m = methods[l].get(d) or _default_method(h[l]["coverage"])
      lines.append(f"| {d} | {l} coverage ({m}) | " + " | ".join(
          f"{_f(c, 2)}{_ci(ci, 2)}" for c, ci in zip(h[l]["coverage"][m],
                                                     h[l]["coverage_ci"][m])) + " |")
  first = next(iter(summary["horizon"].values()))
  for l in labels:
    lines.append(f"| truth | {l} | " + " | ".join(_f(t, 4) for t in first[l]["truth_mean"]) +
                 " |")
  lines += ["", "![horizon](horizon.png)", ""]
  if summary["weight_model"]:
    lines += ["## Weight model G (on each step's new items, last validation interval)", "",
              "AUC, accuracy and loss of G on the step's items before its update; the training "
              "weights G/p (treatment models) and (1 − G)/(1 − p) (control models): their sd "
              "over the step's items and the largest (all 1 while G = p).", "",
              "| job | point | AUC | accuracy | loss | weight sd T | weight sd C | largest "
              "weight |", "|---|---|---|---|---|---|---|---|"]
    for job, by_point in summary["weight_model"].items():
      for key, m in by_point.items():
        lines.append(f"| {job} | {key} | {_f(m['new/weight/auc'], 3)} | "
                     f"{_f(m['new/weight/accuracy'], 3)} | {_f(m['new/weight/loss'], 3)} | "
                     f"{_f(m.get('new/weight/sd_t'), 3)} | {_f(m.get('new/weight/sd_c'), 3)} | "
                     f"{_f(m.get('new/weight/max'), 3)} |")
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
