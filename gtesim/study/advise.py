"""The advisor: the smallest study that tells a team which experiment to run on its own setting.

A team's config (its data, its two rankers, its traffic split `experiment.p_treatment` and
horizon `sim.n_steps`; `advise.*` for the advisor) is run as a study in batches of
`advise.batch` repetitions: batch i is an ordinary study (scripts/study.py's) of its own under
`<out>/batches/<i>/` with `rep_offset` shifted by i batches, so its repetitions are new ones
and the batches together equal one study of all of them. Each batch runs the replicated truth
(`advise.truth_replicates` global replicates per repetition) and every design of
`advise.designs` at the team's split and gap 1 (no A/A, no sweeps: what the decision needs),
each scored by the difference in means and every estimator of `estimator.names` that applies
to it (a cell is a (design, estimator) pair).

After every batch, every cell's paired statistics are computed over all repetitions so far
(study/compact.cells_at: the package's own bias, RMSE, coverage, inflation factors and
decisions) for the decision label, and the lowest-RMSE cell b is compared with every other
cell by multiple comparisons with the best (Hsu; best_bound): a simultaneous upper bound U on
RMSE_b minus the lowest other RMSE, from the paired RMSE differences' delta-method SEs, at
level `advise.alpha / advise.max_batches` (Bonferroni over the looks, so looking after every
batch does not inflate it) and Bonferroni over the comparisons. It is decided when U < 0 (b
is the lowest: "separated") or U <= `advise.margin` x |GTE| (no cell beats b by more than
that share of the true effect: "within margin"; two cells that behave the same are never
separated, however many repetitions run). Otherwise another batch runs, unless
`advise.max_batches` were run or the last batch's cost says the next one would end past
`advise.budget_s` (the reason is said).

Resumable: a finished batch is reused; an interrupted one is resumed by its study (finished
jobs reused, the rest from their checkpoints); `<out>/advise.json` (atomic) holds each
batch's cost (an interrupted invocation's time counted up to its last write in the batch's
folder), every look's cells and the verdict. A folder made with another config (but for
the decision keys budget_s, max_batches, alpha and margin) is refused.
"""

import json
import math
import pathlib
import time

import jax
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from scipy import stats

from gtesim import designs
from gtesim import logs
from gtesim import writing
from gtesim.config import defaults
from gtesim.errors import InputError, require
from gtesim.stats import estimators
from gtesim.stats import paired
from gtesim.study import compact
from gtesim.study import execute as study_lib

log = logs.get_logger("advise")
STATE = "advise.json"
COMPILE_CACHE = "compile-cache"  # Ignored by git; delete it when the advice is done.
KEYS = ("design", "estimator", "se_method", "inflation", "inflation_ci", "bias_pct",
        "bias_pct_ci", "rmse", "power", "wrong_sign", "decided", "B", "cost_s", "study_dir")
# The decision keys: they may change when a folder is resumed (its looks are recomputed).
DECISION_KEYS = ("budget_s", "max_batches", "alpha", "margin")


def check(config) -> None:
  """Refuses bad advise.* values (one line naming the key)."""
  a = config.advise
  require(len(a.designs) >= 1, "advise.designs", "name at least one design.")
  for d in a.designs:
    require(d in designs.AB_DESIGNS, "advise.designs",
            f"'{d}' is not an A/B design; use {', '.join(designs.AB_DESIGNS)}.")
  require(len(set(a.designs)) == len(a.designs), "advise.designs", "holds a design twice.")
  require(a.batch >= 2, "advise.batch", "must be at least 2 repetitions.")
  require(a.max_batches >= 1, "advise.max_batches", "must be at least 1.")
  require(a.budget_s > 0, "advise.budget_s", "must be positive (seconds).")
  require(0 < a.alpha < 1, "advise.alpha", "must be in (0, 1).")
  require(0 <= a.margin < 1, "advise.margin", "must be in [0, 1) (0: no equivalence stop).")
  require(a.truth_replicates >= 2, "advise.truth_replicates",
          "must be at least 2 (the truth's SE is the replicates' sd).")
  require(a.bootstrap >= 100, "advise.bootstrap",
          "must be at least 100 (the inflation factors' and the paired test's intervals).")
  require(not a.label or a.label in config.labels, "advise.label",
          f"'{a.label}' is not a label; use one of {', '.join(config.labels)}.")


def label_of(config) -> str:
  return config.advise.label or list(config.labels)[0]


def batch_config(config, index: int):
  """Batch `index`'s study config: the team's, with the advisor's study section."""
  c = config.copy_and_resolve_references()
  a = c.advise
  with c.unlocked():
    c.repetitions = a.batch
    c.rep_offset = config.rep_offset + index * a.batch
    c.study = s = defaults.study_section()
    s.name = f"advise-batch-{index}"
    s.designs = tuple(a.designs)
    s.p_values = (config.experiment.p_treatment,)
    s.alpha_gaps = (1.0,)
    s.truth_replicates = a.truth_replicates
    s.frozen_truth = False
    s.weighting_video = False
    s.bootstrap = a.bootstrap
    del c["advise"]
  return c


def _identity(config) -> dict:
  """The config but for the decision keys (what a resumed folder must match)."""
  d = json.loads(config.to_json_best_effort())
  for k in DECISION_KEYS:
    d["advise"].pop(k, None)
  return d


def _table(out: pathlib.Path, n_batches: int, batch: int) -> pa.Table:
  """The batches' per-repetition tables, each batch's repetitions shifted after the last's."""
  parts = []
  for i in range(n_batches):
    t = pq.read_table(out / "batches" / str(i) / compact.TABLE)
    rep = pc.add(t.column("rep"), pa.scalar(i * batch, pa.int32()))
    parts.append(t.set_column(t.schema.get_field_index("rep"), "rep", rep))
  return pa.concat_tables(parts)


def _finite(x) -> float | None:
  x = float(x)
  return x if math.isfinite(x) else None


def rmse_difference(eb: np.ndarray, ej: np.ndarray) -> tuple[float, float, int]:
  """RMSE(eb) - RMSE(ej) over the repetitions where both errors are finite, its delta-method
  SE (the paired squared errors' means and covariance) and that number of repetitions."""
  ok = np.isfinite(eb) & np.isfinite(ej)
  x, y = eb[ok] ** 2, ej[ok] ** 2
  n = int(ok.sum())
  if n < 2:
    return math.nan, math.nan, n
  mx, my = float(x.mean()), float(y.mean())
  d = math.sqrt(mx) - math.sqrt(my)
  if mx == 0 or my == 0:
    return d, (0.0 if mx == my else math.nan), n
  cov = np.cov(x, y, ddof=1)
  var = (cov[0, 0] / (4 * mx) + cov[1, 1] / (4 * my)
         - 2 * cov[0, 1] / (4 * math.sqrt(mx * my))) / n
  return d, math.sqrt(max(var, 0.0)), n


def best_bound(err: dict, ranked: list, level: float) -> dict:
  """Multiple comparisons with the best (Hsu) on RMSE: for the lowest-RMSE cell b, the
  simultaneous upper bound U = max over the other cells j of (RMSE_b - RMSE_j) + c * se_bj,
  c the Student t quantile at level / (cells - 1) (Bonferroni over the comparisons, at least
  Dunnett's one-sided constant). With probability >= 1 - level, RMSE_b - min_(j != b) RMSE_j
  <= max(U, 0) whichever cell the data ranked first: U < 0 says b is the best of all cells,
  U <= m that no cell beats it by more than m."""
  b, others = ranked[0], ranked[1:]
  rows = {}
  for j in others:
    d, se, n = rmse_difference(err[b], err[j])
    c = float(stats.t.ppf(1 - level / len(others), n - 1)) if n >= 2 else math.nan
    rows[j] = {"rmse_difference": d, "se": se, "n": n, "upper": d if se == 0 else d + c * se}
  uppers = [r["upper"] for r in rows.values()]
  return {"upper": max(uppers) if all(map(math.isfinite, uppers)) else math.nan,
          "comparisons": rows}


def look(config, out: pathlib.Path, n_batches: int) -> dict:
  """Every cell's statistics over the first n_batches batches, ranked by RMSE, and the
  lowest-RMSE cell's simultaneous bound against every other cell (best_bound)."""
  a, label = config.advise, label_of(config)
  labels = list(config.labels)
  truth, cells = compact.cells_at(_table(out, n_batches, a.batch), labels,
                                  config.experiment.p_treatment, 1.0, config.seed, a.bootstrap)
  t = truth.per_rep[1.0][label]
  ranked = sorted(cells, key=lambda c: (not math.isfinite(cells[c][label]["rmse"]),
                                        cells[c][label]["rmse"]))
  table = {c: {k: cells[c][label][k] for k in ("B", "bias", "bias_pct", "bias_pct_ci", "rmse",
                                                "rmse_ci", "sd", "wrong_sign")}
           for c in ranked}
  out_look = {"B": int(len(t)), "label": label, "ranked": table}
  if len(ranked) >= 2:
    err = {c: np.asarray(cells[c][label]["per_rep"], np.float64) - t for c in ranked}
    level = a.alpha / a.max_batches  # Bonferroni over the looks.
    bound = best_bound(err, ranked, level)
    gte = float(np.nanmean(t))
    margin_abs = a.margin * abs(gte)  # The margin in the label's units: a share of |GTE|.
    upper = bound["upper"]
    separated = bool(math.isfinite(upper) and upper < 0)
    within = bool(a.margin > 0 and math.isfinite(upper) and upper <= margin_abs)
    # The runner-up's paired RMSE difference with its bootstrap interval, for the report.
    diff = paired.difference(err[ranked[0]], err[ranked[1]], config.seed, a.bootstrap)
    out_look["test"] = {"best": ranked[0], "runner_up": ranked[1], **diff, "level": level,
                        "gte": gte, "margin_abs": margin_abs, "upper": upper,
                        "comparisons": bound["comparisons"]}
    out_look["decided"] = separated or within
    out_look["how"] = "separated" if separated else "within margin" if within else ""
  else:
    out_look["decided"], out_look["how"] = True, "one cell"  # Nothing to choose between.
  out_look["best"] = _best(cells[ranked[0]][label], ranked[0])
  return out_look


def _best(stats: dict, cell: str) -> dict:
  """The verdict's fields of a cell: its design and estimator, and the SE method whose
  inflation factor is nearest 1 (the best calibrated; its factor widens the others)."""
  design, _, est = cell.partition(estimators.SEP)
  factors = {m: v for m, v in stats["inflation"].items()
             if v and math.isfinite(v["factor"]) and v["factor"] > 0}
  method = (min(factors, key=lambda m: abs(math.log(factors[m]["factor"]))) if factors
            else next(iter(stats["coverage"]), None))
  inflation = factors.get(method, {"factor": math.nan, "ci": [math.nan, math.nan]})
  decision = stats["decision"].get(method, {})
  return {"design": design, "estimator": est or estimators.DEFAULT, "se_method": method,
          "inflation": _finite(inflation["factor"]),
          "inflation_ci": [_finite(x) for x in inflation["ci"]],
          "bias_pct": _finite(stats["bias_pct"]),
          "bias_pct_ci": [_finite(x) for x in stats["bias_pct_ci"]],
          "rmse": _finite(stats["rmse"]),
          "power": _finite(decision["power"]["value"]) if decision else None,
          "wrong_sign": _finite(stats["wrong_sign"])}


def _words(v: dict, last: dict, why: str) -> str:
  """The verdict in words."""
  def pct(x):
    return "undefined" if x is None else f"{x:+.1f}%"

  def num(x, spec):  # A null (an interval that does not close at this B) says so.
    return "undefined" if x is None else format(x, spec)
  b = last["best"]
  ci = b["bias_pct_ci"]
  if not v["decided"]:
    head = (f"Not decided ({why}); so far the lowest RMSE is {b['design']} with the "
            f"{b['estimator']} estimator")
  elif last["how"] == "within margin":
    t = last["test"]
    head = (f"Run {b['design']} with the {b['estimator']} estimator: no other cell's RMSE is "
            f"lower by more than advise.margin of the true GTE ({t['margin_abs']:.4g}; "
            f"simultaneous upper bound {t['upper']:.4g}), though it is not shown the lowest")
  elif last["how"] == "separated":
    head = (f"Run {b['design']} with the {b['estimator']} estimator: its RMSE is the lowest of "
            f"all cells (simultaneous upper bound {last['test']['upper']:.4g} < 0)")
  else:
    head = f"Run {b['design']} with the {b['estimator']} estimator"
  parts = [f"{head}: on {last['label']} its bias is {pct(b['bias_pct'])} of the true GTE "
           f"[{pct(ci[0])}, {pct(ci[1])}], RMSE {b['rmse']:.4g}"]
  if b["se_method"] is not None and b["inflation"] is not None:
    parts.append(f"use its {b['se_method']} standard error widened by "
                 f"{b['inflation']:.2f} [{num(b['inflation_ci'][0], '.2f')}, "
                 f"{num(b['inflation_ci'][1], '.2f')}] (power {num(b['power'], '.2f')}, "
                 f"wrong sign {num(b['wrong_sign'], '.2f')})")
  if "test" in last:
    t = last["test"]
    parts.append(f"against the runner-up {t['runner_up']} the RMSE differs by "
                 f"{num(t['rmse'], '.4g')} [{num(t['rmse_ci'][0], '.4g')}, "
                 f"{num(t['rmse_ci'][1], '.4g')}]; against "
                 f"all {len(t['comparisons'])} other cells at most {t['upper']:.4g} "
                 f"(simultaneous level {t['level']:.2g}; margin {t['margin_abs']:.4g})")
  parts.append(f"B = {v['B']} repetitions, {v['cost_s']:.0f} s")
  return "; ".join(parts) + "."


def _interrupted_s(state: dict, index: int, bdir: pathlib.Path) -> float:
  """Seconds earlier invocations spent on batch `index` before they were stopped or killed:
  each counts up to its last write in the batch's folder."""
  running = state.get("running")
  if not running or running["index"] != index or not bdir.exists():
    return 0.0
  newest = max((p.stat().st_mtime for p in bdir.rglob("*") if p.is_file()),
               default=running["started_at"])
  return running["earlier_s"] + max(0.0, newest - running["started_at"])


def run(config, out_dir, command: str = "", stop=None) -> dict:
  """Runs (or resumes) the advisor into `out_dir`; returns the verdict (KEYS)."""
  check(config)
  out = pathlib.Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  if not jax.config.jax_compilation_cache_dir:
    # Every batch compiles the same programs (only the repetitions' data differ): from the
    # second batch on, XLA's executables come from this cache instead of compiling again.
    jax.config.update("jax_compilation_cache_dir", str(out / COMPILE_CACHE))
  state_path = out / STATE
  ident = _identity(config)
  state = {"config": ident, "batches": [], "looks": []}
  if state_path.exists():
    state = json.loads(state_path.read_text())
    if state["config"] != ident:
      raise InputError(f"{out} holds an advice for another config (only advise."
                       f"{', advise.'.join(DECISION_KEYS)} may change when it is resumed); "
                       "use another --out.")
  a = config.advise
  why, decided = "", False
  n_looked = 0  # The looks this invocation's procedure made (the batches it used).
  for i in range(a.max_batches):
    n_looked = i + 1
    if i < len(state["batches"]):  # Finished in an earlier invocation: looked at again
      last = look(config, out, i + 1)  # (the decision keys may have changed).
      state["looks"][i] = last
      decided = last["decided"]
      if decided:
        break
      continue
    spent = sum(b["cost_s"] for b in state["batches"])
    if state["batches"] and spent + state["batches"][-1]["cost_s"] > a.budget_s:
      n_looked = i
      why = (f"advise.budget_s = {a.budget_s:g} s would run out: {spent:.0f} s spent, the "
             f"last batch took {state['batches'][-1]['cost_s']:.0f} s")
      break
    log.info("batch %d of at most %d: repetitions %d to %d", i + 1, a.max_batches,
             config.rep_offset + i * a.batch, config.rep_offset + (i + 1) * a.batch - 1)
    bdir = out / "batches" / str(i)
    earlier = _interrupted_s(state, i, bdir)
    state["running"] = {"index": i, "started_at": time.time(), "earlier_s": earlier}
    writing.write_json(state_path, writing.jsonable(state))
    start = time.time()
    study_lib.run(batch_config(config, i), bdir, command, stop=stop)
    state.pop("running")
    state["batches"].append({"index": i, "cost_s": earlier + time.time() - start})
    last = look(config, out, i + 1)
    state["looks"].append(last)
    writing.write_json(state_path, writing.jsonable(state))
    decided = last["decided"]
    t = last.get("test")
    log.info("after %d repetitions: lowest RMSE %s (%.4g)%s", last["B"], last["best"]["design"]
             + ("" if last["best"]["estimator"] == "difference_in_means" else
                "+" + last["best"]["estimator"]), last["best"]["rmse"] or math.nan,
             f", runner-up {t['runner_up']}; RMSE minus every other cell's at most "
             f"{t['upper']:.4g} (margin {t['margin_abs']:.4g})" if t else "")
    if decided:
      break
  else:  # No break: every batch ran undecided.
    why = f"advise.max_batches = {a.max_batches} batches were run"
  if not n_looked:
    raise InputError("advise.budget_s allowed no batch.")
  # Batches past the look that decided (run by an earlier invocation under other decision
  # keys) are kept on disk but are not part of this advice: its looks, B and cost stop there.
  state["unused_batches"] = [b["index"] for b in state["batches"][n_looked:]]
  state["looks"] = state["looks"][:n_looked]
  last = state["looks"][-1]
  verdict = {**last["best"], "decided": bool(decided), "B": last["B"],
             "cost_s": float(sum(b["cost_s"] for b in state["batches"][:n_looked])),
             "study_dir": str(out)}
  verdict = {k: verdict[k] for k in KEYS}
  state["verdict"] = verdict
  state["why_not_decided"] = why if not decided else ""
  state["words"] = _words(verdict, last, why)
  writing.write_json(state_path, writing.jsonable(state))
  return state
