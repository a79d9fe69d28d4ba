"""The Brennan–Holtz replication study's report (report.md), computed from its rows and worlds
alone: each design's bias against the source's truth and against gtesim's paired truth, the
coverage of each SE method, the A/A type-I error and the wrong-sign rate, every figure with
its 95% interval. Sentences are generated from the numbers; none is written by hand."""

import json
import pathlib

import numpy as np
from scipy import stats as scipy_stats

from gtesim import writing
from gtesim.study.replication import DESIGNS

Z95 = 1.959963984540054
_PAIR_NAMES = {("item_cf", "user_cf"): "item-CF − user-CF", ("item_cf", "random"):
               "item-CF − random", ("user_cf", "random"): "user-CF − random",
               ("item_cf", "item_cf"): "item-CF − item-CF (A/A)"}


def wilson(k: int, n: int) -> tuple:
  """(low, high) of the Wilson 95% interval of k successes in n."""
  ci = scipy_stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
  return ci.low, ci.high


def rate(share: float, n: int) -> tuple:
  """(k, low, high) of a share of n runs; refuses a share that is not a whole count of n (a
  rate over fewer runs than B, which would give the wrong interval)."""
  k = round(share * n)
  if abs(k - share * n) > 1e-6:
    raise ValueError(f"share {share} is not a count of {n} runs")
  return (k,) + wilson(k, n)


def ratio_ci(estimates, truths) -> tuple:
  """(100 (E[e] / E[t] - 1), low, high): the bias in % of per-run estimates against per-run
  paired truths, its interval from the ratio's influence function (the runs are paired, so
  the estimate's and the truth's errors are correlated)."""
  e, t = np.asarray(estimates, float), np.asarray(truths, float)
  r = e.mean() / t.mean()
  se = np.std((e - r * t) / t.mean(), ddof=1) / np.sqrt(len(e))
  return 100 * (r - 1), 100 * (r - Z95 * se - 1), 100 * (r + Z95 * se - 1)


def se_to_sd(mean_se: float, sd: float, n: int) -> tuple:
  """(mean SE / sd of the estimates, low, high): whether an SE method measures the runs'
  spread (1: calibrated, whatever the bias); the interval is the sd's chi-square one (the
  mean SE's own error, an average over n runs, is left out)."""
  lo_q, hi_q = scipy_stats.chi2.ppf([0.025, 0.975], n - 1)
  return (mean_se / sd, mean_se / (sd * np.sqrt((n - 1) / lo_q)),
          mean_se / (sd * np.sqrt((n - 1) / hi_q)))


def _pct(v, lo, hi) -> str:
  return f"{v:+.1f}% [{lo:+.1f}, {hi:+.1f}]"


def _ratio(v, lo, hi) -> str:
  return f"{v:.2f} [{lo:.2f}, {hi:.2f}]"


def _num(v, se) -> str:
  return f"{v:+.4f} ± {se:.4f}"


def _share(k, lo, hi, n) -> str:
  return f"{k / n:.3f} [{lo:.3f}, {hi:.3f}]"


def _load(out: pathlib.Path, rows: list) -> list:
  done = []
  for name, part, _ in rows:
    path = out / "rows" / f"{name}.json"
    if path.exists():
      done.append((name, part, json.loads(path.read_text())))
  return done


def _row_figures(r: dict) -> dict:
  """The report's derived figures of one row."""
  b = r["B"]
  f = {"b": b}
  if r["truth_paired"] != 0:
    f["paired_pct"] = ratio_ci(r["per_run"]["estimate"], r["per_run"]["truth_paired"])
  for m in ("user", "cluster", "period"):
    if r.get(f"coverage_{m}") is not None:  # None: no run had a finite SE (a cluster SE
      # with one cluster in an arm).
      f[f"cov_{m}"] = rate(r[f"coverage_{m}"], b)
      f[f"rej_{m}"] = rate(r[f"reject_zero_{m}"], b)
    elif f"coverage_{m}" in r:
      f[f"undefined_{m}"] = True
  if r.get("wrong_sign_rate") is not None and not np.isnan(r["wrong_sign_rate"]):
    f["wrong"] = rate(r["wrong_sign_rate"], b)  # None (JSON's NaN): a truth of exactly 0.
  return f


def _headline(done) -> list:
  lines = ["## The comparisons (p = 0.5, B = 1,000 each)", "",
           "Bias % as the source defines it: the mean estimate against the truth of independent "
           "all-algo1 and all-algo2 worlds (`truth_independent`, table.csv). Bias % against "
           "the paired truth: against the same runs' all-algo1 and all-algo2 worlds (same "
           "seeds), per-run paired, interval by the ratio's delta method. Coverage: the share "
           "of runs whose estimate ± 1.96 SE (user-level SE; cluster design: cluster-level SE) "
           "covers the paired truth, with its Wilson 95% interval. Wrong sign: the share of "
           "runs whose estimate's sign differs from the paired truth's.", "",
           "| γ_pref | effect | design | realised p | truth (independent) | truth (paired) | "
           "mean estimate | bias % (source) | bias % vs paired truth | coverage | "
           "wrong sign |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
  for _, part, r in done:
    if part != "headline" or "refused" in r:
      continue
    f = _row_figures(r)
    se_method = "cluster" if "cov_cluster" in f else "user"
    lines.append(
        f"| {r['gamma_pref']:g} | {_PAIR_NAMES[(r['algo1'], r['algo2'])]} | {r['design']} | "
        f"{r['realised_p']:.3f} | {_num(r['truth_independent'], r['truth_independent_se'])} | "
        f"{_num(r['truth_paired'], r['truth_paired_se'])} | "
        f"{_num(r['mean_estimate'], r['estimate_se'])} | "
        f"{_pct(r['bias_pct'], r['bias_pct_ci_low'], r['bias_pct_ci_high'])} | "
        f"{_pct(*f['paired_pct'])} | {_share(*f['cov_' + se_method], f['b'])} | "
        f"{_share(*f['wrong'], f['b'])} |")
  return lines


def _sentences(done) -> list:
  """Generated findings: the extremes of the naive bias, whether each design's interval
  excludes 0, and the two truths' agreement."""
  head = [(r, _row_figures(r)) for _, part, r in done if part == "headline" and
          "refused" not in r]
  if not head:
    return []
  out = ["## What the table shows", ""]
  pooled = DESIGNS[0]  # The plan's first design pools (naive).
  naive = [(r, f) for r, f in head if r["design"] == pooled]
  if naive:
    lo = min(naive, key=lambda x: x[0]["bias_pct"])
    hi = max(naive, key=lambda x: x[0]["bias_pct"])
    out.append(
        f"- The naive (pooled) estimate's bias against the source's truth ranges from "
        f"{_pct(lo[0]['bias_pct'], lo[0]['bias_pct_ci_low'], lo[0]['bias_pct_ci_high'])} "
        f"({_PAIR_NAMES[(lo[0]['algo1'], lo[0]['algo2'])]}, γ_pref = "
        f"{lo[0]['gamma_pref']:g}) to "
        f"{_pct(hi[0]['bias_pct'], hi[0]['bias_pct_ci_low'], hi[0]['bias_pct_ci_high'])} "
        f"({_PAIR_NAMES[(hi[0]['algo1'], hi[0]['algo2'])]}, γ_pref = {hi[0]['gamma_pref']:g}).")
  for design in DESIGNS:
    cells = [(r, f) for r, f in head if r["design"] == design]
    if not cells:
      continue
    off = [c for c in cells if c[1]["paired_pct"][1] > 0 or c[1]["paired_pct"][2] < 0]
    out.append(
        f"- {design}: in {len(off)} of {len(cells)} comparisons the 95% interval of the bias "
        f"against the paired truth excludes 0 (largest |bias|: "
        f"{_pct(*max(cells, key=lambda c: abs(c[1]['paired_pct'][0]))[1]['paired_pct'])}).")
  cells = {(r["gamma_pref"], r["algo1"], r["algo2"]): r for r, _ in head}
  gaps = [abs(r["truth_independent"] - r["truth_paired"]) >
          Z95 * np.hypot(r["truth_independent_se"], r["truth_paired_se"])
          for r in cells.values()]
  out.append(f"- The two truths (independent runs; runs sharing the A/B runs' seeds) differ "
             f"by more than 1.96 of their combined SE in {sum(gaps)} of the {len(gaps)} "
             f"(γ_pref, comparison) cells; chance alone gives {0.05 * len(gaps):.1f} on "
             "average.")
  for _, part, r in done:
    if part != "aa" or "refused" in r:
      continue
    f = _row_figures(r)
    for m in ("user", "cluster"):
      if f"rej_{m}" in f:
        k, lo, hi = f[f"rej_{m}"]
        out.append(f"- A/A, {r['design']}, {m} SE: type-I error {_share(k, lo, hi, f['b'])} "
                   f"at a nominal 0.05 ({'inside' if lo <= 0.05 <= hi else 'outside'} the "
                   "interval).")
  return out + [""]


def _coverage(done) -> list:
  lines = ["## Coverage of each SE method, A/A type-I error", "",
           "Every row with its SE methods: coverage of the paired truth, and the share of runs "
           "that reject 0 at 5% (in the A/A rows, the type-I error; there the truth is exactly "
           "0; elsewhere the power), with Wilson 95% intervals. A biased design misses the "
           "truth however good its SE; the SE's own calibration is the mean SE over the sd of "
           "the B estimates (1: it measures the runs' spread), with the sd's chi-square "
           "interval.", "",
           "| part | γ_pref | effect | design | p | shuffle | B | method | coverage | "
           "rejects 0 | mean SE / sd |", "|---|---|---|---|---|---|---|---|---|---|---|"]
  for _, part, r in done:
    if "refused" in r:
      continue
    f = _row_figures(r)
    shuffle = f"{r['shuffle']:g}" + (" (each)" if r.get("shuffle_reading") == "each" else "")
    for m in ("user", "cluster", "period"):
      if f.get(f"undefined_{m}"):
        lines.append(
            f"| {part} | {r['gamma_pref']:g} | {_PAIR_NAMES[(r['algo1'], r['algo2'])]} | "
            f"{r['design']} | {r['p']:g} | {shuffle} | {f['b']} | {m} | undefined: an arm "
            "has one cluster, so no between-cluster variance | | |")
      if f"cov_{m}" in f:
        lines.append(
            f"| {part} | {r['gamma_pref']:g} | {_PAIR_NAMES[(r['algo1'], r['algo2'])]} | "
            f"{r['design']} | {r['p']:g} | {shuffle} | {f['b']} | {m} | "
            f"{_share(*f['cov_' + m], f['b'])} | {_share(*f['rej_' + m], f['b'])} | "
            f"{_ratio(*se_to_sd(r[f'mean_se_{m}'], r['estimate_sd'], f['b']))} |")
  return lines + [""]


def _sweeps(done) -> list:
  lines = ["## Sweeps (item-CF − user-CF, γ_pref = 10)", "",
           "| part | design | p | shuffle | realised p | B | truth (paired) | bias % (source) | "
           "bias % vs paired truth | wrong sign |", "|---|---|---|---|---|---|---|---|---|---|"]
  for _, part, r in done:
    if part not in ("p_sweep", "shuffle_sweep", "shuffle_each"):
      continue
    shuffle = f"{r['shuffle']:g}" + (" (each)" if r.get("shuffle_reading") == "each" else "")
    if "refused" in r:
      lines.append(f"| {part} | {r['design']} | {r['p']:g} | {shuffle} | refused: "
                   f"{r['refused']} | | | | | |")
      continue
    f = _row_figures(r)
    lines.append(
        f"| {part} | {r['design']} | {r['p']:g} | {shuffle} | {r['realised_p']:.3f} | {f['b']} | "
        f"{_num(r['truth_paired'], r['truth_paired_se'])} | "
        f"{_pct(r['bias_pct'], r['bias_pct_ci_low'], r['bias_pct_ci_high'])} | "
        f"{_pct(*f['paired_pct'])} | {_share(*f['wrong'], f['b'])} |")
  return lines + [""]


def _worlds(worlds_csv: str) -> list:
  lines = ["## The all-one-ranker worlds", "", "Mean take-up per period (after the warm-up) "
           "of B runs where every user gets one ranker; `paired` runs share the A/B runs' "
           "seeds, `independent` ones draw their own (the source's truth).", "",
           "| γ_pref | ranker | runs | B | take-up | compute s |", "|---|---|---|---|---|---|"]
  for line in worlds_csv.strip().splitlines()[1:]:
    g, algo, kind, b, take, se, seconds = line.split(",")
    lines.append(f"| {g} | {algo} | {kind} | {b} | {float(take):.4f} ± {float(se):.4f} | "
                 f"{float(seconds):.0f} |")
  return lines + [""]


def _costs(done, worlds_csv: str) -> list:
  parts = {}
  for _, part, r in done:
    parts[part] = parts.get(part, 0.0) + r.get("row_seconds", 0.0)
  worlds_s = sum(float(line.split(",")[-1]) for line in worlds_csv.strip().splitlines()[1:])
  total = worlds_s + sum(parts.values())
  lines = ["## Cost", "", "Wall seconds on the machine that ran the study (compilation "
           "included; the world rows are the all-one-ranker worlds' compiled calls).", "",
           "| part | rows | seconds |", "|---|---|---|",
           f"| worlds | {len(worlds_csv.strip().splitlines()) - 1} | {worlds_s:.0f} |"]
  for part, seconds in parts.items():
    lines.append(f"| {part} | {sum(p == part for _, p, _ in done)} | {seconds:.0f} |")
  lines.append(f"| total | | {total:.0f} ({total / 60:.1f} min) |")
  return lines + [""]


def _commit(c: dict) -> str:
  """A provenance.package_commit() in words."""
  if not c or not c.get("package"):
    return "unknown (outside a git checkout)"
  return f"`{c['package'][:10]}`" + (" with uncommitted changes to gtesim/" if c["dirty"]
                                     else "")


def write_report(out: pathlib.Path, rows: list, commit: dict, report_commit: dict) -> None:
  """report.md from the study folder's rows/*.json and worlds.csv; the commits (provenance's
  package_commit) of the runs and of this rendering."""
  done = _load(out, rows)
  worlds_csv = (out / "worlds.csv").read_text() if (out / "worlds.csv").exists() else \
      "header\n"
  missing = len(rows) - len(done)
  lines = ["# Brennan–Holtz replication: the choice world from a config", "",
           "Generated by `scripts/replication_study.py --config configs/replication.py` "
           f"(runs at package commit {_commit(commit)}; this report rendered at "
           f"{_commit(report_commit)}). "
           "The world, the rankers and the designs are the page's "
           "(`../shared/replication/brennan-holtz.md`; decisions in docs/replication.md). "
           "Every effect is take-up(algo1) − take-up(algo2); p is the share of users on "
           "algo2.", ""]
  if missing:
    lines += [f"**Partial: {missing} of {len(rows)} rows are not computed yet.**", ""]
  lines += _sentences(done) + _headline(done) + [""] + _sweeps(done) + _coverage(done) + \
      _worlds(worlds_csv) + _costs(done, worlds_csv)
  with writing.atomic_path(out / "report.md") as tmp:
    pathlib.Path(tmp).write_text("\n".join(lines))
