"""Estimators behind a registry: one registered in a few lines is scored beside every design,
in result.json, study.json, the report, the verdict and compare_studies.py."""

import dataclasses
import json
import pathlib
import subprocess
import sys
from typing import ClassVar

import numpy as np
import pytest

from conftest import small_study_config
from gtesim.config import checks
from gtesim.errors import InputError
from gtesim.stats import estimators
from gtesim.stats.estimators import difference_in_means
from gtesim.study import execute as study

REPO = pathlib.Path(__file__).resolve().parents[1]
MAIN, AA = "p=0.5,gap=1", "p=0.5,gap=0"


@dataclasses.dataclass(frozen=True)
class Half(estimators.Estimator):
  """A test estimator: half the difference in means, with half its Welch SE and CI."""
  name: ClassVar[str] = "half"
  methods: ClassVar[tuple] = ("half_welch",)

  def estimate(self, data, n_blocks, level):
    e = difference_in_means.DifferenceInMeans().estimate(data, n_blocks, level)
    return {"estimate": 0.5 * e["estimate"], "se": {"half_welch": 0.5 * e["se"]["welch"]},
            "ci": {"half_welch": 0.5 * e["ci"]["welch"]}}


if "half" not in estimators.ESTIMATORS:
  estimators.ESTIMATORS.register("half", Half)


def test_a_registered_estimator_is_scored_like_a_design(tiny_root, tmp_path):
  config = small_study_config(tiny_root)
  config.estimator.names = ("half",)
  summary = study.run(config, tmp_path)
  run = json.loads((tmp_path / "runs" / "pooling" / "result.json").read_text())
  for point in run["points"]:
    for label in config.labels:
      gte, half = point["gte"][label], point["estimators"]["half"][label]
      np.testing.assert_allclose(half["per_rep"], 0.5 * np.asarray(gte["per_rep"]), rtol=1e-12)
      np.testing.assert_allclose(half["se_per_rep"]["half_welch"],
                                 0.5 * np.asarray(gte["se_per_rep"]["welch"]), rtol=1e-12)
  truth = np.asarray(summary["truth"]["gap=1"]["click"]["per_rep"])
  cell = summary["designs"]["pooling+half"][MAIN]["click"]
  est = np.asarray(cell["per_rep"])
  assert cell["bias"] == pytest.approx(np.mean(est - truth), rel=1e-12)
  ci = np.asarray(cell["ci95_per_rep"]["half_welch"])
  assert cell["coverage"]["half_welch"] == np.mean((ci[:, 0] <= truth) & (truth <= ci[:, 1]))
  assert list(cell["n_method"]) == ["half_welch"]
  # The design's own cell is the difference in means, unchanged.
  np.testing.assert_allclose(summary["designs"]["pooling"][MAIN]["click"]["per_rep"],
                             2 * est, rtol=1e-12)
  assert "pooling+half" in summary["aa"] and "half_welch" in summary["aa"]["pooling+half"][
      "click"]["type_I_error"]
  assert summary["horizon"]["pooling+half"]["click"]["coverage"].keys() == {"half_welch"}
  assert "pooling - pooling+half" in summary["differences"]["click"]
  assert {r["design"] for r in summary["verdict"]["click"]} == {"pooling", "pooling+half"}
  report = (tmp_path / "report.md").read_text()
  assert "| pooling+half |" in report and "half_welch" in report
  out = subprocess.run([sys.executable, "scripts/compare_studies.py", str(tmp_path),
                        str(tmp_path)], cwd=REPO, capture_output=True, text=True, check=True)
  assert "pooling+half" in out.stdout


def test_estimator_names_are_checked(tiny_root):
  for names, match in ((("nope",), r"estimator\.names: 'nope' is not an estimator"),
                       (("half", "half"), r"estimator\.names: holds a name twice"),
                       (("difference_in_means",), r"estimator\.names: 'difference_in_means'")):
    config = small_study_config(tiny_root)
    config.estimator.names = names
    with pytest.raises(InputError, match=match):
      checks.check(config)
