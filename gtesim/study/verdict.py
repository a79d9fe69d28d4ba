"""A study's verdict: per label, which design to run, which SE to use and how to widen it.

Drawn from study.json's numbers at the main point only; every entry carries its interval:

- designs ordered by RMSE against the replicated truth, each with its RMSE difference to
  the lowest-RMSE design (paired over repetitions: designs share every repetition's set-up)
  and its bias as % of the truth [bootstrap CI];
- per design the SE method to use: of the methods defined in every repetition, the one whose
  inflation factor (stats/calibration.py) is closest to 1 (|log c| smallest), with its factor
  [CI] and the out-of-sample coverage of the widened interval [Wilson CI];
- "calibrated" only where the design's A/A type-I error CI of that method holds 0.05 and its
  inflation CI holds 1 (docs/statistics.md's wording rules), and only where the type-I CI is
  narrow enough to tell 0.05 from 0.10 (its upper end below 0.10: B >= ~200) and the
  inflation CI is finite; otherwise not tested (None);
- the decisions of that method's interval widened by its factor (power, significant with the
  wrong sign) and the A/A false launch rate of its interval as is.
"""

import numpy as np

from gtesim.stats import decision as decision_lib
from gtesim.study.summary import point_key

NOMINAL_TYPE_I = 0.05
DOUBLE_TYPE_I = 0.10  # A type-I CI reaching it cannot tell a calibrated SE from a liberal one.


def _method(entry, b):
  """The SE method of a design's main-point entry (see the module docstring), or None."""
  best, best_gap = None, np.inf
  for m in entry["n_method"]:  # The cell's own methods (an estimator's).
    f = entry["inflation"].get(m, {}).get("factor", np.nan)
    if entry["n_method"][m] == b and np.isfinite(f) and f > 0:
      gap = abs(np.log(f))
      if gap < best_gap:
        best, best_gap = m, gap
  return best


def _widened_decisions(entry, truth, m, factor):
  est = np.asarray(entry["per_rep"], np.float64)
  se = np.asarray(entry["se_per_rep"][m], np.float64)
  ci = np.asarray(entry["ci95_per_rep"][m], np.float64)
  ok = np.isfinite(est) & np.isfinite(se) & (se > 0) & np.isfinite(truth)
  q = (ci[ok, 1] - ci[ok, 0]) / (2 * se[ok])
  return decision_lib.decisions(est[ok], truth[ok],
                                decision_lib.widened(est[ok], se[ok], q, factor))


def verdict(config, summary) -> dict:
  """{label: [row per design, lowest RMSE first]} (rows: see the module docstring)."""
  main = point_key(config.experiment.p_treatment, 1.0)
  aa_key = point_key(config.experiment.p_treatment, 0.0)
  out = {}
  for l in config.labels:
    truth = np.asarray(summary["truth"]["gap=1"][l]["per_rep"], np.float64)
    rows = []
    for d, by_point in summary["designs"].items():
      if main not in by_point:
        continue
      e = by_point[main][l]
      m = _method(e, e["B"])
      row = {"design": d, "rmse": e["rmse"], "rmse_ci": e["rmse_ci"], "bias": e["bias"],
             "bias_ci": e["bias_ci"], "bias_pct": e["bias_pct"], "bias_pct_ci": e["bias_pct_ci"],
             "B": e["B"], "n_undefined": e["n_undefined"], "method": m,
             "starvation": summary["starvation"].get(d, {}).get(main)}
      if m is not None:
        inf = e["inflation"][m]
        row.update(factor=inf["factor"], factor_ci=inf["ci"], oos_coverage=inf["oos"]["coverage"],
                   oos_ci=inf["oos"]["ci"], coverage=e["coverage"][m],
                   coverage_ci=e["coverage_ci"][m],
                   decisions=_widened_decisions(e, truth, m, inf["factor"]))
        aa = by_point.get(aa_key, {}).get(l)
        if aa is not None and aa["n_method"][m]:
          row.update(type_i=1 - aa["coverage"][m],
                     type_i_ci=[1 - aa["coverage_ci"][m][1], 1 - aa["coverage_ci"][m][0]],
                     false_launch=aa["decision"][m]["launch"])
        row["calibrated"] = None  # No A/A of this design, or too few repetitions to tell.
        if aa is not None and aa["n_method"][m] and np.isfinite(inf["ci"]).all():
          type_i = row["type_i_ci"]
          if not type_i[0] <= NOMINAL_TYPE_I <= type_i[1]:
            row["calibrated"] = False  # The A/A rejects 0.05.
          elif not inf["ci"][0] <= 1.0 <= inf["ci"][1]:
            row["calibrated"] = False  # Under treatment its SE needs widening (or narrowing).
          elif type_i[1] < DOUBLE_TYPE_I:
            row["calibrated"] = True
      rows.append(row)
    rows.sort(key=lambda r: r["rmse"] if np.isfinite(r["rmse"]) else np.inf)
    if rows:
      best = rows[0]["design"]
      diffs = summary["differences"][l]
      for r in rows:
        if r["design"] == best:
          r["vs_best"] = None
          continue
        key, sign = ((f"{r['design']} - {best}", 1) if f"{r['design']} - {best}" in diffs
                     else (f"{best} - {r['design']}", -1))
        dd = diffs[key]
        ci = sorted(sign * x for x in dd["rmse_ci"])
        r["vs_best"] = {"rmse": sign * dd["rmse"], "rmse_se": dd["rmse_se"], "rmse_ci": ci,
                        "bias": sign * dd["bias"], "bias_se": dd["bias_se"]}
    out[l] = rows
  return out
