"""Compact studies: every design cell of study.json recomputes from per_rep.parquet, a tampered
value is found, and pruning keeps what a referee needs."""

import json
import pathlib
import shutil
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from gtesim.errors import InputError
from gtesim.study import compact

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_every_cell_recomputes_from_the_table_and_a_tampered_value_is_found(small_study,
                                                                            tmp_path):
  config, folder, summary = small_study
  assert (folder / compact.TABLE).exists()  # Written by the study itself.
  table = pq.read_table(folder / compact.TABLE).to_pydict()
  assert {"truth-r1", "pooling"} <= set(table["job"])
  assert {"estimate", "se", "ci_low", "ci_high", "gte", "gt", "gc"} <= set(table["quantity"])
  check = compact.recompute(folder)
  assert check.n > 500 and check.mismatches == []
  copy = tmp_path / "study"
  shutil.copytree(folder, copy)
  saved = json.loads((copy / "study.json").read_text())
  cell = saved["designs"]["pooling"]["p=0.5,gap=1"]["click"]
  cell["coverage"]["user"] = 0.123
  (copy / "study.json").write_text(json.dumps(saved))
  check = compact.recompute(copy)
  assert [m[0] for m in check.mismatches] == ["designs.pooling.p=0.5,gap=1.click.coverage.user"]
  with pytest.raises(InputError, match="do not recompute"):
    compact.prune(copy, {})
  assert (copy / "runs" / "pooling" / "result.json").exists()  # Nothing removed.


def test_prune_removes_the_bulk_and_says_how_to_regenerate_it(small_study, tmp_path):
  _, folder, _ = small_study
  copy = tmp_path / "study"
  shutil.copytree(folder, copy)
  svgs = sorted(p.name for p in copy.glob("*.svg"))
  assert svgs and all((copy / s).with_suffix(".png").exists() for s in svgs)
  prune = [sys.executable, "scripts/compact_study.py", str(copy), "--prune"]
  out = subprocess.run(prune, cwd=REPO_ROOT, capture_output=True, text=True)
  assert out.returncode == 0, out.stderr[-2000:]
  assert "0 differences" in out.stderr
  manifest = json.loads((copy / compact.MANIFEST).read_text())
  assert manifest["mismatches"] == 0 and manifest["values_recomputed"] > 500
  assert manifest["removed_figure_svgs"] == svgs and not list(copy.glob("*.svg"))
  assert all((copy / s).with_suffix(".png").exists() for s in svgs)
  for run in (copy / "runs").iterdir():
    assert sorted(p.name for p in run.iterdir()) == ["config.json"]
  assert compact.recompute(copy).mismatches == []  # The table alone still recomputes it.
  twice = subprocess.run(prune, cwd=REPO_ROOT, capture_output=True, text=True)
  assert twice.returncode == 0, twice.stderr[-2000:]
  assert json.loads((copy / compact.MANIFEST).read_text()) == manifest  # Counts kept.
  again = subprocess.run([sys.executable, "scripts/compact_study.py", str(copy)],
                         cwd=REPO_ROOT, capture_output=True, text=True)
  assert again.returncode == 0 and "0 differences" in again.stderr
