"""Descriptive statistics on the host (numpy): AUC, finite means, per-repetition summaries."""

import numpy as np


def auc(score: np.ndarray, label: np.ndarray) -> float:
  """ROC AUC with ties counted one half (Mann-Whitney U)."""
  score = np.asarray(score, np.float64)
  label = np.asarray(label) > 0.5
  order = np.argsort(score, kind="stable")
  ranks = np.empty(len(score))
  sorted_scores = score[order]
  lo = np.searchsorted(sorted_scores, sorted_scores, "left")
  hi = np.searchsorted(sorted_scores, sorted_scores, "right")
  ranks[order] = (lo + hi + 1) / 2
  n_pos, n_neg = label.sum(), (~label).sum()
  if n_pos == 0 or n_neg == 0:
    return float("nan")
  return float((ranks[label].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def finite_mean(values, axis=None):
  """Mean of the finite values along `axis` (all axes if None); NaN where there are none."""
  values = np.asarray(values, np.float64)
  ok = np.isfinite(values)
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(ok, values, 0).sum(axis) / ok.sum(axis)


def _std(x):
  x = x[np.isfinite(x)]
  return float(np.std(x, ddof=1)) if len(x) > 1 else float("nan")


def summary(per_rep, **extra) -> dict:
  """per_rep with its mean, sample sd and standard error over repetitions."""
  per_rep = np.asarray(per_rep, np.float64)
  finite = per_rep[np.isfinite(per_rep)]
  mean = float(finite.mean()) if len(finite) == len(per_rep) and len(finite) else float("nan")
  sd = _std(per_rep)
  return {"per_rep": per_rep.tolist(), "mean": mean, "std": sd,
          "se": sd / np.sqrt(len(per_rep)), **extra}
