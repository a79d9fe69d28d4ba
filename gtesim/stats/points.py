"""result.json's block of one sweep point: the global truth, or an A/B design's estimate."""

import numpy as np

from gtesim.stats import estimator
from gtesim.stats import estimators as estimators_lib
from gtesim.stats.descriptive import summary


def exploration_of(worlds, point: int) -> dict:
  """A point's exploration settings, when the run explores (result.json's points)."""
  if not worlds.exploration.traced:
    return {}
  q = worlds.points[point]
  return {f: getattr(q, f) for f in worlds.exploration.traced}


def truth_block(labels, history, worlds, point: int) -> dict:
  """GT at a point's alpha gap, GC (the last world), and the true GTE per label (per
  recommendation, also as totals and as % of GC)."""
  s = history.steps
  gt_w, gc_w = point, worlds.n_worlds - 1
  means = estimator.world_means(s.outcome_sum[:, :, :, 0], s.n_recs[:, :, :, 0])  # [B, W, L]
  totals = s.outcome_sum[:, :, :, 0].astype(np.float64).sum(0)
  out = {"p_treatment": None, "alpha_gap": worlds.points[point].alpha_gap,
         **exploration_of(worlds, point), "gte": {}, "gt": {}, "gc": {}}
  for l, name in enumerate(labels):
    gte = means[:, gt_w, l] - means[:, gc_w, l]
    with np.errstate(invalid="ignore", divide="ignore"):
      pct = np.where(means[:, gc_w, l] != 0, 100 * gte / means[:, gc_w, l], np.nan)
    extra = {"total_per_rep": (totals[:, gt_w, l] - totals[:, gc_w, l]).tolist(),
             "pct_per_rep": pct.tolist(),
             "pct_mean": float(pct.mean()) if np.isfinite(pct).all() else None}
    if not np.isfinite(pct).all():
      extra["pct_note"] = ("undefined (null) where GC's mean outcome is 0: no percentage of "
                           "zero")
    out["gte"][name] = summary(gte, **extra)
    out["gt"][name] = summary(means[:, gt_w, l], total_per_rep=totals[:, gt_w, l].tolist())
    out["gc"][name] = summary(means[:, gc_w, l], total_per_rep=totals[:, gc_w, l].tolist())
  return out


def estimate(history, design, point: int, t: int, e: int, n_blocks: int, points=(),
             by=None) -> dict:
  """An estimator's (`by`, default the difference in means) estimate of a point over the
  first t steps, with the device-side variances of validation e (estimators.base.RunData)."""
  by = by or estimators_lib.ESTIMATORS.get(estimators_lib.DEFAULT)()
  return by.estimate(estimators_lib.RunData(history, design, tuple(points), point, t, e),
                     n_blocks, estimator.LEVEL)


def _per_label(e, l) -> dict:
  return {"se_per_rep": {m: e["se"][m][:, l].tolist() for m in e["se"]},
          "ci95_per_rep": {m: e["ci"][m][:, l].tolist() for m in e["ci"]}}


def estimate_block(labels, history, worlds, point: int, n_blocks: int,
                   extra: dict | None = None) -> dict:
  """The naive estimate of one point with its standard errors and 95% CIs per method (`gte`),
  and each of the `extra` estimators' ({name: Estimator}) under `estimators.<name>`."""
  e = estimate(history, worlds.design, point, history.n_steps, -1, n_blocks, worlds.points)
  q = worlds.points[point]
  out = {"p_treatment": q.p_treatment, "alpha_gap": q.alpha_gap, **exploration_of(worlds, point),
         "gte": {}, "arms": {"T": {}, "C": {}}}
  for l, name in enumerate(labels):
    out["gte"][name] = summary(e["estimate"][:, l], **_per_label(e, l))
    out["arms"]["T"][name] = summary(e["arm_mean"][:, 0, l])
    out["arms"]["C"][name] = summary(e["arm_mean"][:, 1, l])
  if extra:
    out["estimators"] = {}
    for est_name, by in extra.items():
      x = estimate(history, worlds.design, point, history.n_steps, -1, n_blocks, worlds.points,
                   by)
      out["estimators"][est_name] = {name: summary(x["estimate"][:, l], **_per_label(x, l))
                                     for l, name in enumerate(labels)}
  return out
