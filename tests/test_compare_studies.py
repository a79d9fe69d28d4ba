"""scripts/compare_studies.py: biases in the label's units, and no % of a truth whose CI holds 0."""

import json
import pathlib
import subprocess
import sys

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
MAIN = "p=0.5,gap=1"


def _study(folder, truth_mean, seed):
  """A study.json with one label `y`, pooling and splitting at the main point."""
  rng = np.random.default_rng(seed)
  truth = truth_mean + rng.normal(0, 20, 100)
  designs = {}
  for name, shift in (("pooling", 10.0), ("splitting", -30.0)):
    est = truth + shift + rng.normal(0, 5, 100)
    d = est - truth
    designs[name] = {MAIN: {"y": {
        "bias": float(d.mean()), "bias_ci": [float(d.mean() - 1), float(d.mean() + 1)],
        "bias_pct": float(100 * d.mean() / truth.mean()), "bias_pct_ci": [-1e3, 1e3],
        "wrong_sign": 0.1, "wrong_sign_own": 0.1, "coverage": {"user": 0.9},
        "per_rep": est.tolist()}}}
  folder.mkdir()
  (folder / "study.json").write_text(json.dumps({
      "B": 100, "p_main": 0.5, "aa": {}, "designs": designs,
      "truth": {"gap=1": {"y": {"per_rep": truth.tolist(), "mean": float(truth.mean()),
                                "se": float(truth.std(ddof=1) / 10)}}}}))


def test_percent_only_where_the_truths_interval_excludes_zero(tmp_path):
  _study(tmp_path / "far", 100.0, 0)  # Truth ~100 ± 2: the % is defined.
  _study(tmp_path / "near", 0.5, 1)  # Truth ~0.5 ± 2: its CI holds 0.
  out = subprocess.run([sys.executable, str(REPO / "scripts" / "compare_studies.py"),
                        str(tmp_path / "far"), str(tmp_path / "near")],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
  assert out.returncode == 0, out.stderr
  rows = {line.split(" | ")[0]: line.split(" | ") for line in out.stdout.splitlines()
          if line.startswith(("| pooling |", "| splitting |"))}
  pooling = rows["| pooling"]
  # far: bias in units, then a %; near: bias in units, then no %.
  assert abs(float(pooling[1].split()[0]) - 10) < 3 and abs(float(pooling[5].split()[0]) - 10) < 3
  assert "%" in pooling[2] and pooling[2].endswith("]")
  assert pooling[6] == "— (truth's CI holds 0)"
  paired = [line for line in out.stdout.splitlines() if line.startswith("| splitting | y |")]
  far, near = paired[0].split(" | ")[2:4]
  for cell in (far, near):  # -30 - 10, paired: the truth cancels.
    assert abs(float(cell.split()[0]) + 40) < 3
  assert "of the truth" in far and "of the truth" not in near


def test_out_writes_the_tables_and_the_bias_figure(tmp_path):
  _study(tmp_path / "a", 100.0, 0)
  _study(tmp_path / "b", 0.5, 1)
  out = subprocess.run([sys.executable, str(REPO / "scripts" / "compare_studies.py"),
                        str(tmp_path / "a"), str(tmp_path / "b"),
                        "--out", str(tmp_path / "comparison.md")],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
  assert out.returncode == 0, out.stderr
  assert "![bias per design](comparison.png)" in (tmp_path / "comparison.md").read_text()
  assert (tmp_path / "comparison.png").stat().st_size > 0
  assert (tmp_path / "comparison.svg").stat().st_size > 0
