"""A study's statistics (study.json) from the jobs' histories.

Every number is paired: a design's estimate in repetition b is scored against the truth of
repetition b at the same alpha gap (stats/paired.py). The horizon block repeats this at every
validation step, with the estimate and the truth both cumulative up to that step.
"""

import numpy as np

from gtesim.data import sizes
from gtesim.driver import results
from gtesim.stats import estimator
from gtesim.stats import paired
from gtesim.stats import points as points_lib
from gtesim.stats.descriptive import summary
from gtesim.stats.variance import METHODS
from gtesim.study import plan as plan_lib

TRUTH_FROZEN_NAME = "policy effect at the pretrained model"


def point_key(p, gap, epsilon=None) -> str:
  """A design point's key in study.json (the epsilon only where it is not sim.epsilon)."""
  return f"p={p:g},gap={gap:g}" + ("" if epsilon is None else f",eps={epsilon:g}")


def _truth_by_gap(job, history, labels) -> dict:
  """{gap: {label: [B] true GTE}} of a global job (gap 0: exactly 0, GT is GC)."""
  out = {}
  for s, gap in enumerate(q.alpha_gap for q in job.worlds.points):
    g = points_lib.truth_block(labels, history, job.worlds, s)["gte"]
    out[gap] = {l: np.asarray(g[l]["per_rep"]) for l in labels}
  out[0.0] = {l: np.zeros(history.n_reps) for l in labels}
  return out


def _truth_noise(job, history, labels, n_blocks) -> dict:
  """{gap: {label: mean over repetitions of the batch-means SE of GT - GC}}: how noisy one
  repetition's truth is (its worlds see finitely many recommendations)."""
  s, gc = history.steps, job.worlds.n_worlds - 1
  out = {}
  for w, gap in enumerate(q.alpha_gap for q in job.worlds.points):
    both = [w, gc]
    e = estimator.ab_estimate(s.outcome_sum[:, :, both, 0], s.outcome_sq[:, :, both, 0],
                              s.n_recs[:, :, both, 0], None, n_blocks, estimator.LEVEL)
    out[gap] = {l: float(np.mean(e["se"]["batch"][:, i])) for i, l in enumerate(labels)}
  return out


def _truth_upto(history, worlds, point, t, labels):
  """[B, L] true GTE over the first t steps at a global job's point."""
  s = history.steps
  means = estimator.world_means(s.outcome_sum[:t, :, :, 0], s.n_recs[:t, :, :, 0])
  return means[:, point] - means[:, worlds.n_worlds - 1]


def _point_stats(est, truth, labels) -> dict:
  return {l: {**paired.paired(est["estimate"][:, i], truth[l],
                              {m: est["se"][m][:, i] for m in METHODS},
                              {m: est["ci"][m][:, i] for m in METHODS}),
              "per_rep": est["estimate"][:, i].tolist(),
              "ci95_per_rep": {m: est["ci"][m][:, i].tolist() for m in METHODS}}
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
  by_epsilon = {e: _truth_by_gap(by_name[plan_lib.exploration_truth_name(e)],
                                 histories[plan_lib.exploration_truth_name(e)], labels)
                for e in config.study.epsilons}
  out = {"name": config.study.name, "B": config.repetitions,
         "data": {"name": config.data.name, "size": sizes.size_name(config.data)
                  if config.data.name.startswith("synthetic") else config.data.root},
         "environment": {"kind": config.sim.environment, "outcome": config.sim.outcome,
                         "retrieval": config.sim.retrieval},
         "p_main": config.experiment.p_treatment, "assignment": config.experiment.assignment,
         "n_steps": config.sim.n_steps, "batch_size": config.sim.batch_size,
         "pretrain": pretrain_report,
         "truth": {f"gap={g:g}": {l: summary(
             v[l], within_rep_se=noise.get(g, {}).get(l, 0.0)) for l in labels}
                   for g, v in sorted(truth.items())},
         "designs": {}, "aa": {}, "horizon": {}, "weight_model": {}}
  if frozen is not None:
    out["truth_frozen"] = {f"gap={g:g}": {l: summary(v[l]) for l in labels}
                           for g, v in sorted(frozen.items())}
    out["truth_frozen_label"] = TRUTH_FROZEN_NAME
  if by_epsilon:
    out["truth_exploration"] = {
        f"eps={e:g}": {f"gap={g:g}": {l: summary(v[l]) for l in labels}
                       for g, v in sorted(t.items())} for e, t in by_epsilon.items()}
  truth_worlds = by_name["truth"].worlds
  models = results.model_metrics(truth_hist, truth_worlds)
  out["models"] = {"GT": models["GT" + truth_worlds.point_name(0)], "GC": models["GC"]}
  for job in jobs:
    design = job.worlds.design
    if design.arms == 1:  # The truth's worlds.
      continue
    h = histories[job.name]
    entry = out["designs"][job.name] = {}
    for s, q in enumerate(job.worlds.points):
      p, gap = q.p_treatment, q.alpha_gap
      est = points_lib.estimate(h, design, s, h.n_steps, -1, n_blocks)
      if q.epsilon != config.sim.epsilon:  # An exploration point: scored at its own truth.
        key = point_key(p, gap, q.epsilon)
        entry[key] = _point_stats(est, by_epsilon[q.epsilon][gap], labels)
        entry[key]["epsilon"] = q.epsilon
        continue
      entry[point_key(p, gap)] = _point_stats(est, truth[gap], labels)
      if design.scored_against_frozen_truth and frozen is not None:
        entry[point_key(p, gap)]["vs_truth_frozen"] = _point_stats(est, frozen[gap], labels)
      if gap == 0.0:
        out["aa"][job.name] = {
            l: {"type_I_error": {m: 1.0 - v["coverage"][m] for m in METHODS},
                "mean": v["mean"], "sd": v["sd"], "B": v["B"], "p_treatment": p}
            for l, v in entry[point_key(p, gap)].items() if l in labels}
    out["horizon"][job.name] = _horizon(job, h, by_name["truth"], truth_hist, labels,
                                        n_blocks)
    if design.step_metrics:  # Weighting: G's metrics on new items.
      g = results.model_metrics(h, job.worlds)
      out["weight_model"][job.name] = {
          point_key(*job.worlds.points[s][:2]): g[design.step_metrics_world +
                                              job.worlds.point_name(s)]
          for s in range(len(job.worlds.points))}

  return out


def _horizon(job, history, truth_job, truth_hist, labels, n_blocks) -> dict:
  """Estimate and truth at every validation step of the main point (point 0 of both jobs)."""
  out = {"step": [], **{l: {"truth_mean": [], "estimate_mean": [], "bias": [], "bias_se": [],
                            "coverage": {m: [] for m in METHODS}} for l in labels}}
  for e, t in enumerate(history.eval_step):
    if t == 0:
      continue
    truth_t = _truth_upto(truth_hist, truth_job.worlds, 0, t, labels)
    est = points_lib.estimate(history, job.worlds.design, 0, t, e, n_blocks)
    out["step"].append(int(t))
    for i, l in enumerate(labels):
      st = paired.paired(est["estimate"][:, i], truth_t[:, i],
                         {m: est["se"][m][:, i] for m in METHODS},
                         {m: est["ci"][m][:, i] for m in METHODS})
      out[l]["truth_mean"].append(st["truth_mean"])
      out[l]["estimate_mean"].append(st["mean"])
      out[l]["bias"].append(st["bias"])
      out[l]["bias_se"].append(st["bias_se"])
      for m in METHODS:
        out[l]["coverage"][m].append(st["coverage"][m])
  return out
