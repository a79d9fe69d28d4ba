"""Validation of label models on fixed logged rows (SPEC §4 step 7)."""

from gtesim.core import features
from gtesim import metrics
from gtesim.core.state import EvalRows


def evaluate_models(spec, env, rep, params, rows: EvalRows, models=None,
                    prefix: str = "") -> dict:
  """Per label: `<prefix><label>/loss` and its kind's metric (`<label>/auc`,
  `<label>/rel_error`) of `models` (default spec.models) with `params`."""
  pairs, y = features.logged_rows(spec.static, env, rep, rows.user, rows.page, rows.col)
  out = {}
  for l, (model, p) in enumerate(zip(models or spec.models, params)):
    raw = model.apply(p, pairs)
    out[f"{prefix}{model.name}/loss"] = metrics.masked_mean(model.loss(raw, y[:, l]), rows.mask)
    out[f"{prefix}{model.name}/{model.kind.metric}"] = model.kind.validation_metric(
        raw, y[:, l], rows.mask)
  return out
