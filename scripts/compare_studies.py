"""Headline tables of several studies side by side (e.g. one per ranker), from their
study.json only.

  python scripts/compare_studies.py experiments/rankers/mlp experiments/rankers/two_tower \\
      --out experiments/rankers/comparison.md

Per study and label: the true GTE with trained and with frozen models (how much the training
loop moves the outcome), every design's paired bias at the main point in the label's units [t
CI] and as % of the truth [its paired bootstrap CI], how often its estimate has the wrong sign
and its user-SE coverage; the A/A's type-I error; the exploration points where the study has
them. A % of a truth whose own 95% interval holds 0 is not printed: the ratio is unbounded
there (Fieller), and the bootstrap's finite interval would not cover it. With --out, a figure
beside it (<out>.png, .svg): each design's bias in the label's units [95% CI], per study.
"""

import json
import pathlib

from absl import app
from absl import flags

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np
from scipy import stats as scipy_stats

from gtesim import writing
from gtesim.driver.figures import save_figure
from gtesim.stats import descriptive
from gtesim.study.report import pct_text

_OUT = flags.DEFINE_string("out", None, "Markdown file to write (default: print).")
_NAIVE = flags.DEFINE_string("naive", "pooling", "The design the others are compared with.")


def _f(x, digits=4):
  return "—" if x is None else f"{x:.{digits}g}"


def _se(x):
  """A standard error to 2 significant digits, without an exponent below 10^6."""
  return "—" if x is None else f"{float(f'{x:.2g}'):g}"


def _paired(a, b) -> dict:
  """descriptive.summary of the per-repetition differences a_b - b_b (undefined left out)."""
  return descriptive.summary([x - y for x, y in zip(a, b) if x is not None and y is not None])


def truth_holds_zero(t) -> bool:
  """Whether the truth's 95% t interval (mean ± t_{B-1} se over the repetitions) holds 0."""
  n = len(t["per_rep"])
  q = scipy_stats.t.ppf(0.975, n - 1) if n > 1 else np.inf
  return abs(t["mean"]) <= q * t["se"]


def _bias(v) -> str:
  """A design's bias in the label's units with its t interval."""
  lo, hi = v["bias_ci"]
  return f"{_f(v['bias'])} [{_f(lo)}, {_f(hi)}]"


def _pct(v, t) -> str:
  """Bias as % of the truth [bootstrap CI], or why not."""
  return "— (truth's CI holds 0)" if truth_holds_zero(t) else pct_text(v)


def _method(v) -> str:
  """The SE a design's own randomisation calls for: its unit SE where it has one (cluster,
  switchback), else the user-clustered SE."""
  stats = v.get("coverage") or v.get("type_I_error") or {}
  if stats.get("unit") is not None:
    return "unit"
  # An estimator's cell (<design>+<estimator>) has its own methods: its first.
  return "user" if "user" in stats or not stats else next(iter(stats))


def _units(folder) -> dict:
  """{label: unit} from a study's first run config (empty where it has none)."""
  for config in sorted(pathlib.Path(folder).glob("runs/*/config.json")):
    return {l: v.get("unit", "") for l, v in json.loads(config.read_text())["labels"].items()}
  return {}


def figure(folders, stem) -> None:
  """Per label, every design's bias at the main point in the label's units with its 95% t
  interval, one marker per study; the truth's mean ± se of each study in the legend."""
  studies = [(pathlib.Path(f).name, json.loads((pathlib.Path(f) / "study.json").read_text()),
              _units(f)) for f in folders]
  labels = list(next(iter(studies[0][1]["truth"].values())))
  main = f"p={studies[0][1]['p_main']:g},gap=1"
  designs = list(studies[0][1]["designs"])
  fig, axes = plt.subplots(1, len(labels), figsize=(6.5 * len(labels), 0.5 * len(designs) + 1.8),
                           constrained_layout=True, squeeze=False)
  y = np.arange(len(designs))
  offsets = np.linspace(-0.15, 0.15, len(studies)) if len(studies) > 1 else [0.0]
  for ax, l in zip(axes[0], labels):
    for (name, s, _), dy in zip(studies, offsets):
      rows = [s["designs"].get(d, {}).get(main, {}).get(l) for d in designs]
      shown = [i for i, r in enumerate(rows) if r is not None]
      v = np.asarray([rows[i]["bias"] for i in shown], np.float64)
      lo = np.asarray([rows[i]["bias_ci"][0] for i in shown], np.float64)
      hi = np.asarray([rows[i]["bias_ci"][1] for i in shown], np.float64)
      t = s["truth"]["gap=1"][l]
      ax.errorbar(v, y[shown] + dy, xerr=[v - lo, hi - v], fmt="o", capsize=3,
                  label=f"{name} (truth {t['mean']:.4g} ± {_se(t['se'])})")
    ax.axvline(0, color="gray", ls="--", lw=1)
    ax.set_yticks(y, designs)
    ax.invert_yaxis()
    unit = studies[0][2].get(l, "")
    ax.set_xlabel(f"bias = mean(estimate − truth) per recommendation{f', {unit}' if unit else ''}")
    ax.set_title(f"{l}: bias at {main} [95% CI]", fontsize=9)
    ax.legend(fontsize=7)
  save_figure(fig, stem)


def tables(folders) -> str:
  studies = [(pathlib.Path(f).name, json.loads((pathlib.Path(f) / "study.json").read_text()))
             for f in folders]
  labels = list(next(iter(studies[0][1]["truth"].values())))
  main = f"p={studies[0][1]['p_main']:g},gap=1"
  lines = ["# " + " vs ".join(n for n, _ in studies), "",
           "Generated by `scripts/compare_studies.py` from each study's study.json; B = "
           + ", ".join(f"{s['B']} ({n})" for n, s in studies) + ".", "",
           "## The truth: trained vs frozen models", "",
           "True GTE per recommendation (mean ± se over repetitions). Frozen: the same policies "
           "with the models fixed at the production state; trained − frozen is what the "
           "models' learning from the experiment's own traffic adds to the effect.", "",
           "| study | label | trained | frozen | trained − frozen | frozen / trained |",
           "|---|---|---|---|---|---|"]
  for name, s in studies:
    for l in labels:
      t, fz = s["truth"]["gap=1"][l], s.get("truth_frozen", {}).get("gap=1", {}).get(l)
      if fz is None:
        lines.append(f"| {name} | {l} | {_f(t['mean'])} ± {_se(t['se'])} | — | — | — |")
        continue
      diff = t["mean"] - fz["mean"]
      paired = _paired(t["per_rep"], fz["per_rep"])  # The same repetitions' truths.
      se = paired["se"]
      lines.append(f"| {name} | {l} | {_f(t['mean'])} ± {_se(t['se'])} | {_f(fz['mean'])} ± "
                   f"{_se(fz['se'])} | {_f(diff)} ± {_se(se)} | "
                   f"{_f(fz['mean'] / t['mean'] if t['mean'] else None, 3)} |")
  for l in labels:
    lines += ["", f"## Designs at the main point ({main}): {l}", "",
              "bias: mean of est_b − T_b in the label's units [95% t CI]; bias %: as % of the "
              "true GTE [95% paired bootstrap CI], not printed where the truth's own CI holds 0; "
              "wrong sign: share of repetitions whose estimate "
              "has the other sign than the mean truth / than the repetition's own truth; "
              "coverage of the user-clustered 95% CI (the unit CI for cluster and switchback).",
              "",
              "| design | " + " | ".join(f"{n}: bias | {n}: bias % | {n}: wrong sign | "
                                        f"{n}: coverage" for n, _ in studies) + " |",
              "|---|" + "---|---|---|---|" * len(studies)]
    for d in studies[0][1]["designs"]:
      cells = []
      for _, s in studies:
        v = s["designs"].get(d, {}).get(main, {}).get(l)
        if v is None:
          cells += ["—"] * 4
          continue
        method = _method(v)
        cells += [_bias(v), _pct(v, s["truth"]["gap=1"][l]),
                  f"{_f(v.get('wrong_sign'), 2)} / {_f(v.get('wrong_sign_own'), 2)}",
                  _f(v["coverage"].get(method), 3)]
      lines.append(f"| {d} | " + " | ".join(cells) + " |")
  lines += ["", f"## Each design against pooling (the naive design), paired ({main})", "",
            "mean over repetitions of est_design − est_pooling ± its paired se (the designs "
            "share users, candidates and outcome draws, so the difference is far less noisy "
            "than either bias), in the label's units (z), and as % of the true GTE where the "
            "truth's CI excludes 0; the truth cancels.", "",
            "| design | label | " + " | ".join(f"{n}: design − pooling"
                                             for n, _ in studies) + " |",
            "|---|---|" + "---|" * len(studies)]
  for d in studies[0][1]["designs"]:
    if d == _NAIVE.value:
      continue
    for l in labels:
      cells = []
      for _, s in studies:
        a = s["designs"].get(d, {}).get(main, {}).get(l)
        b = s["designs"].get(_NAIVE.value, {}).get(main, {}).get(l)
        if a is None or b is None:
          cells.append("—")
          continue
        d_ab = _paired(a["per_rep"], b["per_rep"])
        mean, se = d_ab["mean"], d_ab["se"]
        t = s["truth"]["gap=1"][l]
        pct = ("" if truth_holds_zero(t) else
               f"; {100 * mean / t['mean']:+.1f}% ± {100 * se / abs(t['mean']):.1f} of the truth")
        cells.append(f"{_f(mean)} ± {_se(se)} (z = {mean / se:+.1f}){pct}")
      lines.append(f"| {d} | {l} | " + " | ".join(cells) + " |")
  if any(s["aa"] for _, s in studies):  # None where every study's arms rank differently.
    lines += ["", "## A/A (gap 0): type-I error at 5% (user SE; unit SE for cluster and "
              "switchback) and the mean estimate", "",
              "| design | label | " + " | ".join(f"{n}: type-I | {n}: mean" for n, _ in studies)
              + " |", "|---|---|" + "---|---|" * len(studies)]
  for d in studies[0][1]["aa"]:
    for l in labels:
      cells = []
      for _, s in studies:
        v = s["aa"].get(d, {}).get(l)
        method = _method(v) if v else "user"
        cells += ([_f(v["type_I_error"].get(method), 3), _f(v["mean"])] if v else ["—", "—"])
      lines.append(f"| {d} | {l} | " + " | ".join(cells) + " |")
  if any("truth_exploration" in s for _, s in studies):
    lines += ["", "## Exploration (epsilon-greedy)", "",
              "Each epsilon has its own truth; the designs' bias at that epsilon is against it.",
              "", "| study | epsilon | label | true GTE | design | bias | bias % | "
              "wrong sign (mean / own) |",
              "|---|---|---|---|---|---|---|---|"]
    for name, s in studies:
      eps_keys = ["eps=0"] + list(s.get("truth_exploration", {}))
      for eps in eps_keys:
        for l in labels:
          t = (s["truth"] if eps == "eps=0" else s["truth_exploration"][eps])["gap=1"][l]
          for d, by_point in s["designs"].items():
            key = main if eps == "eps=0" else f"{main},{eps}"
            if key not in by_point or (eps == "eps=0" and not any(
                k.endswith(f",{e}") for e in s.get("truth_exploration", {}) for k in by_point)):
              continue
            v = by_point[key][l]
            lines.append(f"| {name} | {eps[4:]} | {l} | {_f(t['mean'])} ± {_se(t['se'])} | "
                         f"{d} | {_bias(v)} | {_pct(v, t)} | {_f(v.get('wrong_sign'), 2)} / "
                         f"{_f(v.get('wrong_sign_own'), 2)} |")
    lines += ["", "Paired across epsilon (the same repetitions; bias_b = est_b − GTE_b at each "
              "epsilon): bias at epsilon minus bias at epsilon 0, ± its paired se, in the label's "
              "units, and the biases it compares.", "",
              "| study | label | design | epsilon | bias at 0 | bias at epsilon | Δ bias (z) |",
              "|---|---|---|---|---|---|---|"]
    for name, s in studies:
      for l in labels:
        t0 = s["truth"]["gap=1"][l]
        for d, by_point in s["designs"].items():
          for eps, t in s.get("truth_exploration", {}).items():
            key = f"{main},{eps}"
            if key not in by_point:
              continue
            b0 = [e - g for e, g in zip(by_point[main][l]["per_rep"], t0["per_rep"])]
            b1 = [e - g for e, g in zip(by_point[key][l]["per_rep"], t["gap=1"][l]["per_rep"])]
            n = len(b0)
            d_eps = _paired(b1, b0)
            mean, se = d_eps["mean"], d_eps["se"]
            lines.append(f"| {name} | {l} | {d} | {eps[4:]} | {_f(sum(b0) / n)} | "
                         f"{_f(sum(b1) / n)} | {_f(mean)} ± {_se(se)} ({mean / se:+.1f}) |")
  return "\n".join(lines) + "\n"


def main(argv):
  text = tables(argv[1:])
  if _OUT.value:
    out = pathlib.Path(_OUT.value)
    figure(argv[1:], out.with_suffix(""))
    text = text.replace("\n\n## The truth", f"\n\n![bias per design]({out.stem}.png)\n\n"
                        "## The truth", 1)
    with writing.atomic_path(out) as tmp:
      tmp.write_text(text)
  else:
    print(text)


if __name__ == "__main__":
  app.run(main)
