"""The study: its plan, its statistics against the truth, and a tiny end-to-end run."""

import json

import numpy as np
import pytest

from conftest import small_sim_config
from gtesim import default_config, study


def _study_config(root, **overrides):
  config = small_sim_config(root, **overrides)
  config.study = default_config.study_section()
  return config


def test_plan_names_every_run(tiny_root):
  runs = study.plan(_study_config(tiny_root))
  assert set(runs) == {"global", "global-frozen"} | {
      f"{d}-p{p}" for d in ("pooling", "splitting", "snapshot", "weighting")
      for p in ("0.1", "0.2", "0.5")} | {
      f"aa-{d}-p0.5" for d in ("pooling", "splitting", "snapshot", "weighting")}
  assert runs["global-frozen"].sim.train_models is False
  aa = runs["aa-weighting-p0.5"]
  assert all(l.alpha_T == l.alpha_C for l in aa.labels.values())
  assert runs["splitting-p0.1"].experiment.p_treatment == 0.1
  assert "study" not in runs["global"]


def _ab(est, half_width):
  est = np.asarray(est, float)
  return {"mode": "pooling", "p_treatment": 0.5, "gte": {"click": {
      "per_rep": est.tolist(), "ci95_per_rep": np.stack([est - half_width,
                                                          est + half_width], 1).tolist()}}}


def test_summary_statistics_against_the_truth(tiny_root):
  config = _study_config(tiny_root)
  with config.unlocked():
    del config.labels["play_time"]
  truth = {"gte": {"click": {"per_rep": [0.9, 1.1, 1.0, 1.0]}},
           "metrics_final_and_at_step_0": {}}
  results = {"global": truth, "pooling-p0.5": _ab([1.5, 0.5, 2.0, 1.0], 0.6),
             "aa-pooling-p0.5": _ab([0.1, -0.2, 0.5, 0.0], 0.3)}
  s = study.summarize(config, results)
  d = s["designs"]["pooling"]["p=0.5"]["click"]
  assert s["truth"]["click"]["mean"] == pytest.approx(1.0)
  assert d["bias"] == pytest.approx(0.25)
  assert d["sd"] == pytest.approx(np.std([1.5, 0.5, 2.0, 1.0], ddof=1))
  assert d["rmse"] == pytest.approx(np.sqrt(np.mean(np.square([0.5, -0.5, 1.0, 0.0]))))
  assert d["coverage"] == pytest.approx(0.75)  # Only 2.0 ± 0.6 misses 1.0.
  assert s["aa"]["pooling"]["click"]["type_I_error"] == pytest.approx(0.25)  # 0.5±0.3.


def test_tiny_study_end_to_end(tiny_root, tmp_path):
  config = _study_config(tiny_root)
  config.study.designs = ("pooling",)
  config.study.p_values = (0.5,)
  config.study.aa = False
  config.study.frozen_truth = False
  (tmp_path / "analysis.md").write_text("Hand-written analysis.")
  summary = study.run(config, tmp_path)
  assert set(summary["designs"]) == {"pooling"}
  saved = json.loads((tmp_path / "study.json").read_text())
  assert saved["designs"]["pooling"]["p=0.5"]["click"]["B"] == 2
  report = (tmp_path / "report.md").read_text()
  assert "| pooling | 0.5 |" in report and "Hand-written analysis." in report
  assert (tmp_path / "boxplots.png").exists() and (tmp_path / "p_sweep.png").exists()
  again = study.run(config, tmp_path)  # Finished runs are reused, not rerun.
  assert again["designs"] == summary["designs"]
