"""Merging array-task pieces gives the result of one run with all the repetitions."""

import json

import pytest

from conftest import small_sim_config
from gtesim import merge, simulation
from gtesim.errors import InputError


@pytest.mark.parametrize("mode", ["global", "weighting"])
def test_merged_pieces_equal_the_single_run(tiny_root, tmp_path, mode):
  whole = simulation.run(small_sim_config(tiny_root, mode=mode, repetitions=2), tmp_path / "all")
  simulation.run(small_sim_config(tiny_root, mode=mode, repetitions=1, rep_offset=1),
                 tmp_path / "b")
  simulation.run(small_sim_config(tiny_root, mode=mode, repetitions=1), tmp_path / "a")
  merged = merge.merge([tmp_path / "b", tmp_path / "a"], tmp_path / "merged")
  for result in (whole, merged):
    result.pop("timing")
  # Evaluation metrics of a repetition agree with the single run to float32 rounding (a
  # batched reduction may sum in another order); everything else is exact.
  metrics_whole = whole.pop("metrics_final_and_at_step_0")
  metrics_merged = merged.pop("metrics_final_and_at_step_0")
  assert merged == whole
  for group, values in metrics_whole.items():
    for key, value in values.items():
      if value is None:  # No data yet (the weight model at step 0).
        assert metrics_merged[group][key] is None
      else:
        assert metrics_merged[group][key] == pytest.approx(value, rel=1e-6), key
  on_disk = json.loads((tmp_path / "merged" / "result.json").read_text())
  on_disk.pop("timing")
  on_disk.pop("metrics_final_and_at_step_0")
  assert on_disk == json.loads(json.dumps(whole))


def test_merge_refuses_mismatched_or_overlapping_pieces(tiny_root, tmp_path):
  simulation.run(small_sim_config(tiny_root, repetitions=1), tmp_path / "a")
  simulation.run(small_sim_config(tiny_root, repetitions=1, seed=5), tmp_path / "b")
  with pytest.raises(InputError, match="config key seed is 5"):
    merge.merge([tmp_path / "a", tmp_path / "b"], tmp_path / "m")
  with pytest.raises(InputError, match="contiguous range once"):
    merge.merge([tmp_path / "a", tmp_path / "a"], tmp_path / "m")
