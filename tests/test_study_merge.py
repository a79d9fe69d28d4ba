"""Merging array-task pieces gives the result of one run with all the repetitions."""

import json
import shutil

import pytest

from conftest import small_sim_config
from gtesim.driver import simulate
from gtesim.study import merge
from gtesim.errors import InputError


def _comparable(result):
  result = json.loads(json.dumps(result))
  result.pop("timing")
  result["pretrain"].pop("wall_s")
  return result


@pytest.mark.parametrize("mode", ["global", "weighting"])
def test_merged_pieces_equal_the_single_run(tiny_root, tmp_path, mode):
  overrides = {"sweep.alpha_gap": (0.5, 1.0)} if mode == "global" else {}
  whole = simulate.run(small_sim_config(tiny_root, mode=mode, repetitions=3, **overrides),
                         tmp_path / "all")
  simulate.run(small_sim_config(tiny_root, mode=mode, repetitions=2, rep_offset=1,
                                  **overrides), tmp_path / "b")
  simulate.run(small_sim_config(tiny_root, mode=mode, repetitions=1, **overrides),
                 tmp_path / "a")
  merged = merge.merge([tmp_path / "b", tmp_path / "a"], tmp_path / "merged")
  assert _comparable(merged) == _comparable(whole)  # Metrics and pretraining curve included.
  on_disk = json.loads((tmp_path / "merged" / "result.json").read_text())
  assert _comparable(on_disk) == _comparable(whole)


def test_merge_refuses_mismatched_or_overlapping_pieces(tiny_root, tmp_path):
  simulate.run(small_sim_config(tiny_root, repetitions=1), tmp_path / "a")
  simulate.run(small_sim_config(tiny_root, repetitions=1, seed=5), tmp_path / "b")
  with pytest.raises(InputError, match="config key seed is 5"):
    merge.merge([tmp_path / "a", tmp_path / "b"], tmp_path / "m")
  with pytest.raises(InputError, match="contiguous range once"):
    merge.merge([tmp_path / "a", tmp_path / "a"], tmp_path / "m")
  with pytest.raises(InputError, match="is one of the pieces to merge"):
    merge.merge([tmp_path / "a"], tmp_path / "a")
  merge.merge([tmp_path / "a"], tmp_path / "m")
  with pytest.raises(InputError, match="already holds a run .*pass --overwrite"):
    merge.merge([tmp_path / "a"], tmp_path / "m")
  (tmp_path / "m" / "run.log").write_text("an old run's log\n")
  merge.merge([tmp_path / "a"], tmp_path / "m", overwrite=True)
  assert not (tmp_path / "m" / "run.log").exists()  # Nothing of the old run is kept.
  shutil.copytree(tmp_path / "a", tmp_path / "killed")
  config = json.loads((tmp_path / "killed" / "config.json").read_text())
  config["sim"]["n_steps"] = 40  # As a --resume to 40 steps killed before its first chunk.
  (tmp_path / "killed" / "config.json").write_text(json.dumps(config))
  with pytest.raises(InputError, match="killed is not a finished run: config.json says 40 "
                                       "steps, result.json 20, steps.parquet 20"):
    merge.merge([tmp_path / "killed"], tmp_path / "m2")
