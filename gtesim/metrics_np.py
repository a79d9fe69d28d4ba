"""Host-side (numpy) metrics for reports and tests."""

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
