"""A study's statistics (study.json) from the jobs' histories.

Every number is paired: a design's estimate in repetition b is scored against the truth of
repetition b at the same alpha gap (the mean of its K truth replicates, with that mean's SE;
stats/paired.py, stats/calibration.py). The horizon block repeats this at every validation
step, with the estimate and the truth both cumulative up to that step. The verdict
(study/verdict.py) is drawn from these numbers.
"""

import numpy as np

from gtesim.data import sizes
from gtesim.driver import results
from gtesim.stats import estimator
from gtesim.stats import estimators as estimators_lib
from gtesim.stats import paired
from gtesim.stats import points as points_lib
from gtesim.stats.descriptive import summary
from gtesim.study import plan as plan_lib

TRUTH_FROZEN_NAME = "policy effect at the pretrained model"


def point_key(p, gap, epsilon=None) -> str:
  """A design point's key in study.json (the epsilon only where it is not sim.epsilon)."""
  return f"p={p:g},gap={gap:g}" + ("" if epsilon is None else f",eps={epsilon:g}")


def _truth_by_gap(job, history, labels) -> dict:
  """{gap: {label: [B] true GTE}} of one global job (gap 0: exactly 0, GT is GC)."""
  out = {}
  for s, gap in enumerate(q.alpha_gap for q in job.worlds.points):
    g = points_lib.truth_block(labels, history, job.worlds, s)["gte"]
    out[gap] = {l: np.asarray(g[l]["per_rep"]) for l in labels}
  out[0.0] = {l: np.zeros(history.n_reps) for l in labels}
  return out


def _batch_se(job, history, labels, n_blocks) -> dict:
  """{gap: {label: [B] batch-means SE of one replicate's GT - GC}} (how noisy a single global
  run's truth is: its worlds see finitely many draws)."""
  s, gc = history.steps, job.worlds.n_worlds - 1
  out = {0.0: {l: np.zeros(history.n_reps) for l in labels}}
  for w, gap in enumerate(q.alpha_gap for q in job.worlds.points):
    both = [w, gc]
    e = estimator.ab_estimate(s.outcome_sum[:, :, both, 0], s.outcome_sq[:, :, both, 0],
                              s.n_recs[:, :, both, 0], None, n_blocks, estimator.LEVEL)
    out[gap] = {l: e["se"]["batch"][:, i] for i, l in enumerate(labels)}
  return out


class Truth:
  """One truth of a study (trained, frozen, at an epsilon, ...): the mean of its K replicate
  jobs per repetition, and that mean's SE (sd over the replicates / sqrt(K); with K = 1 the
  replicate's batch-means SE)."""

  def __init__(self, config, jobs: dict, histories: dict, base: str):
    labels = list(config.labels)
    names = plan_lib.replicate_names(config, base)
    self.k = len(names)
    self.jobs = [jobs[n] for n in names]
    self.histories = [histories[n] for n in names]
    n_blocks = config.estimator.batch_blocks
    self.per_rep, self.se, self.single_se = {}, {}, {}
    # The main point's replicates, then those of the sweep gaps (on fewer repetitions).
    for part in (base, base + plan_lib.SWEEP_SUFFIX):
      part_names = plan_lib.replicate_names(config, part)
      if part_names[0] not in jobs:
        continue
      part_jobs, part_hist = [jobs[n] for n in part_names], [histories[n] for n in part_names]
      reps = [_truth_by_gap(j, h, labels) for j, h in zip(part_jobs, part_hist)]
      single = [_batch_se(j, h, labels, n_blocks) for j, h in zip(part_jobs, part_hist)]
      for gap in reps[0]:
        if gap in self.per_rep:  # Gap 0 (exactly 0) of the sweep part: the main part's.
          continue
        self.per_rep[gap], self.se[gap], self.single_se[gap] = {}, {}, {}
        for l in labels:
          v = np.stack([r[gap][l] for r in reps])  # [K, B]
          self.per_rep[gap][l] = v.mean(0)
          self.single_se[gap][l] = np.stack([r[gap][l] for r in single]).mean(0)
          self.se[gap][l] = (v.std(0, ddof=1) / np.sqrt(self.k) if self.k > 1
                             else self.single_se[gap][l])

  def upto(self, t, labels) -> tuple:
    """([B, L] truth over the first t steps at the main point, [B, L] its SE: 0 with K = 1,
    where no batch-means SE of a part of the run is kept)."""
    v = np.stack([_truth_upto(h, j.worlds, 0, t, labels)
                  for j, h in zip(self.jobs, self.histories)])
    return v.mean(0), (v.std(0, ddof=1) / np.sqrt(self.k) if self.k > 1
                       else np.zeros(v.shape[1:]))

  def table(self, labels) -> dict:
    """study.json's block: per gap and label the truth over repetitions, each repetition's
    truth SE, its root mean square after replication and a single replicate's ("before")."""
    rms = lambda x: float(np.sqrt(np.mean(np.square(x))))
    return {f"gap={g:g}": {l: summary(
        v[l], truth_se_per_rep=self.se[g][l].tolist(), truth_se=rms(self.se[g][l]),
        single_replicate_se=rms(self.single_se[g][l]), replicates=self.k,
        within_rep_se=float(np.mean(self.single_se[g][l]))) for l in labels}
            for g, v in sorted(self.per_rep.items())}


def _truth_upto(history, worlds, point, t, labels):
  """[B, L] true GTE over the first t steps at a global job's point."""
  s = history.steps
  means = estimator.world_means(s.outcome_sum[:t, :, :, 0], s.n_recs[:t, :, :, 0])
  return means[:, point] - means[:, worlds.n_worlds - 1]


def _point_stats(config, est, truth: Truth, gap, labels) -> dict:
  return point_stats(est, truth, gap, labels, config.seed, config.study.bootstrap)


def point_stats(est, truth, gap, labels, seed: int, n_boot: int) -> dict:
  """A design point's paired statistics (study.json's cell at a point): `est` an estimator's
  {"estimate": [B, L], "se"/"ci": {method: ...}}, `truth` with per_rep[gap][label] and
  se[gap][label] (Truth); a sweep job's n repetitions are the study's first n, paired with
  their truths."""
  n = est["estimate"].shape[0]
  methods = list(est["se"])  # The estimator's own SE methods.
  return {l: {**paired.paired(est["estimate"][:, i], truth.per_rep[gap][l][:n],
                              {m: est["se"][m][:, i] for m in methods},
                              {m: est["ci"][m][:, i] for m in methods},
                              truth_se=truth.se[gap][l][:n], seed=seed, n_boot=n_boot),
              "per_rep": est["estimate"][:, i].tolist(),
              "se_per_rep": {m: est["se"][m][:, i].tolist() for m in methods},
              "ci95_per_rep": {m: est["ci"][m][:, i].tolist() for m in methods}}
          for i, l in enumerate(labels)}


def _starvation(history, point: int) -> dict:
  """Per arm (T, C): the share of sampled users with fewer than n_candidate candidates
  (short) and with none (exhausted, no recommendation), over every step and repetition."""
  s = history.steps
  sampled = (s.n_recs[:, :, point] + s.n_exhausted[:, :, point]).astype(np.float64).sum((0, 1))
  out = {}
  for a, arm in enumerate(("T", "C")):
    n = max(sampled[a], 1.0)
    out[arm] = {"short": float(s.n_short[:, :, point, a].sum() / n),
                "exhausted": float(s.n_exhausted[:, :, point, a].sum() / n)}
  return out


def _differences(config, entry_by_design: dict, truth: Truth, labels) -> dict:
  """{label: {"x - y": paired.difference}} over every pair of designs at the main point."""
  names = list(entry_by_design)
  out = {}
  for l in labels:
    t = truth.per_rep[1.0][l]
    d = {n: np.asarray(entry_by_design[n][l]["per_rep"], np.float64) - t for n in names}
    out[l] = {f"{x} - {y}": paired.difference(d[x], d[y], config.seed, config.study.bootstrap)
              for i, x in enumerate(names) for y in names[i + 1:]}
  return out


def _pretrain_brief(report) -> dict:
  return {"rows": report["rows"], "epochs_run": report["epochs_run"],
          "best_epoch": {l: float(np.mean(v)) for l, v in report["best_epoch"].items()},
          "best_val_loss": {l: float(np.mean(v)) for l, v in report["best_val_loss"].items()},
          "converged_fraction": report["converged_fraction"], "wall_s": report["wall_s"]}


def _states(config, jobs, by_name, histories, pretrain_reports, labels, n_blocks) -> dict:
  """The production-state sweep: per state its pretraining, truth (trained, frozen) and each
  state design's paired statistics and horizon at the main point."""
  out = {}
  key = point_key(config.experiment.p_treatment, 1.0)
  for name, _, _ in config.study.production_states:
    tag = f"{plan_lib.STATE_SEP}{name}"
    truth = Truth(config, by_name, histories, plan_lib.TRUTH + tag)
    entry = {"pretrain": _pretrain_brief(pretrain_reports[name]),
             "B": truth.jobs[0].config.repetitions, "truth": truth.table(labels),
             "designs": {}, "horizon": {}}
    if config.study.frozen_truth:
      entry["truth_frozen"] = Truth(config, by_name, histories,
                                    plan_lib.TRUTH_FROZEN + tag).table(labels)
    for design in config.study.state_designs:
      job = by_name[design + tag]
      h = histories[job.name]
      est = points_lib.estimate(h, job.worlds.design, 0, h.n_steps, -1, n_blocks)
      entry["designs"][design] = {key: _point_stats(config, est, truth, 1.0, labels)}
      entry["horizon"][design] = _horizon(job, h, truth, labels, n_blocks)
    out[name] = entry
  return out


def summarize(config, jobs, histories, pretrain_reports) -> dict:
  """study.json's content (see docs/studies.md for every key); pretrain_reports: per
  production state ("" the main one) its pretraining report."""
  pretrain_report = pretrain_reports[""]
  labels = list(config.labels)
  by_name = {j.name: j for j in jobs}
  n_blocks = config.estimator.batch_blocks
  study = config.study
  truth = Truth(config, by_name, histories, plan_lib.TRUTH)
  frozen = (Truth(config, by_name, histories, plan_lib.TRUTH_FROZEN)
            if study.frozen_truth else None)
  expected = (Truth(config, by_name, histories, plan_lib.TRUTH_EXPECTED)
              if study.expected_truth else None)
  by_epsilon = {e: Truth(config, by_name, histories, plan_lib.exploration_truth_name(e))
                for e in study.epsilons}
  out = {"name": study.name, "B": config.repetitions, "seed": config.seed,
         "sweep_repetitions": study.sweep_repetitions or config.repetitions,
         "truth_replicates": study.truth_replicates, "bootstrap": study.bootstrap,
         "data": {"name": config.data.name, "size": sizes.size_name(config.data)
                  if config.data.name.startswith("synthetic") else config.data.root},
         "environment": {"kind": config.sim.environment, "outcome": config.sim.outcome,
                         "retrieval": config.sim.retrieval},
         "p_main": config.experiment.p_treatment, "assignment": config.experiment.assignment,
         "n_steps": config.sim.n_steps, "batch_size": config.sim.batch_size,
         "pretrain": pretrain_report, "truth": truth.table(labels),
         "designs": {}, "aa": {}, "horizon": {}, "weight_model": {}, "starvation": {}}
  if frozen is not None:
    out["truth_frozen"] = frozen.table(labels)
    out["truth_frozen_label"] = TRUTH_FROZEN_NAME
  if expected is not None:
    out["truth_expected"] = expected.table(labels)
  if by_epsilon:
    out["truth_exploration"] = {f"eps={e:g}": t.table(labels) for e, t in by_epsilon.items()}
  truth_worlds, truth_hist = truth.jobs[0].worlds, truth.histories[0]
  models = results.model_metrics(truth_hist, truth_worlds)
  out["models"] = {"GT": models["GT" + truth_worlds.point_name(0)], "GC": models["GC"]}
  main = point_key(config.experiment.p_treatment, 1.0)
  default = {estimators_lib.DEFAULT: estimators_lib.ESTIMATORS.get(estimators_lib.DEFAULT)()}
  for job in jobs:
    design = job.worlds.design
    if design.arms == 1 or job.state:  # The truth's worlds; the state sweep's jobs.
      continue
    h = histories[job.name]
    name = job.name.removesuffix(plan_lib.SWEEP_SUFFIX)  # A sweep job's points: its design's.
    ests, why = estimators_lib.applicable(job.config, design, job.worlds.points)
    if why:  # Estimators the job's design or points cannot give: no cell, and why.
      out.setdefault("estimators_not_applied", {})[job.name] = why
    for est_name, by in {**default, **ests}.items():  # Every (design, estimator) is a cell.
      cell = estimators_lib.cell(name, est_name)
      entry = out["designs"].setdefault(cell, {})
      starved = out["starvation"].setdefault(cell, {})
      for s, q in enumerate(job.worlds.points):
        p, gap = q.p_treatment, q.alpha_gap
        est = points_lib.estimate(h, design, s, h.n_steps, -1, n_blocks, job.worlds.points, by)
        if q.epsilon != config.sim.epsilon:  # An exploration point: scored at its own truth.
          key = point_key(p, gap, q.epsilon)
          entry[key] = _point_stats(config, est, by_epsilon[q.epsilon], gap, labels)
          entry[key]["epsilon"] = q.epsilon
        else:
          key = point_key(p, gap)
          entry[key] = _point_stats(config, est, truth, gap, labels)
          if design.reporting.scored_against_frozen_truth and frozen is not None:
            entry[key]["vs_truth_frozen"] = _point_stats(config, est, frozen, gap, labels)
        starved[key] = _starvation(h, s)
        if gap == 0.0 and q.epsilon == config.sim.epsilon:
          out["aa"][cell] = {
              l: {"type_I_error": {m: 1.0 - v["coverage"][m] for m in v["coverage"]},
                  "type_I_ci": {m: [1.0 - v["coverage_ci"][m][1],
                                    1.0 - v["coverage_ci"][m][0]] for m in v["coverage"]},
                  "n_method": v["n_method"],
                  "false_launch": {m: v["decision"][m]["launch"] for m in v["decision"]},
                  "mean": v["mean"], "sd": v["sd"], "B": v["B"], "p_treatment": p}
              for l, v in entry[key].items() if l in labels}
      if name == job.name:  # The main point's job.
        out["horizon"][cell] = _horizon(job, h, truth, labels, n_blocks, by)
    if design.reporting.step_metrics:  # Weighting: G's metrics on new items.
      g = results.model_metrics(h, job.worlds)
      out["weight_model"].setdefault(name, {}).update({
          point_key(*job.worlds.points[s][:2]):
              g[design.reporting.step_metrics_world + job.worlds.point_name(s)]
          for s in range(len(job.worlds.points))})
  if study.production_states:
    out["states"] = _states(config, jobs, by_name, histories, pretrain_reports, labels,
                            n_blocks)
    out["states"][""] = {"pretrain": _pretrain_brief(pretrain_report)}
  at_main = {d: v[main] for d, v in out["designs"].items() if main in v}
  out["differences"] = _differences(config, at_main, truth, labels)
  return out


def _horizon(job, history, truth: Truth, labels, n_blocks, by=None) -> dict:
  """Estimate (by an estimator, default the difference in means) and truth at every
  validation step of the main point (point 0 of both jobs)."""
  by = by or estimators_lib.ESTIMATORS.get(estimators_lib.DEFAULT)()
  methods = by.methods
  out = {"step": [], **{l: {"truth_mean": [], "estimate_mean": [], "bias": [], "bias_se": [],
                            "coverage": {m: [] for m in methods},
                            "coverage_ci": {m: [] for m in methods},
                            "coverage_net": {m: [] for m in methods}} for l in labels}}
  for e, t in enumerate(history.eval_step):
    if t == 0:
      continue
    truth_t, truth_se = truth.upto(t, labels)
    est = points_lib.estimate(history, job.worlds.design, 0, t, e, n_blocks,
                              job.worlds.points, by)
    out["step"].append(int(t))
    for i, l in enumerate(labels):
      st = paired.paired(est["estimate"][:, i], truth_t[:, i],
                         {m: est["se"][m][:, i] for m in methods},
                         {m: est["ci"][m][:, i] for m in methods}, truth_se=truth_se[:, i])
      out[l]["truth_mean"].append(st["truth_mean"])
      out[l]["estimate_mean"].append(st["mean"])
      out[l]["bias"].append(st["bias"])
      out[l]["bias_se"].append(st["bias_se"])
      for m in methods:
        out[l]["coverage"][m].append(st["coverage"][m])
        out[l]["coverage_ci"][m].append(st["coverage_ci"][m])
        out[l]["coverage_net"][m].append(st["coverage_net"][m])
  return out
