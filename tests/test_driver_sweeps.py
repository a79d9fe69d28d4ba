"""Sweeps: p and the alpha gap are traced inputs, one mapped axis of one compiled call."""

import pytest

from conftest import small_sim_config
from gtesim.driver import simulate


def test_a_design_sweep_point_equals_the_single_run(tiny_root, tmp_path):
  swept = simulate.run(small_sim_config(
      tiny_root, mode="weighting", **{"sweep.p_treatment": (0.2, 0.7),
                                      "sweep.alpha_gap": (0.0, 1.0)}), tmp_path / "sweep")
  points = {(p["p_treatment"], p["alpha_gap"]): p for p in swept["points"]}
  assert sorted(points) == [(0.2, 0.0), (0.2, 1.0), (0.7, 0.0), (0.7, 1.0)]
  for p, gap in ((0.7, 0.0), (0.2, 1.0)):
    single = simulate.run(small_sim_config(
        tiny_root, mode="weighting", **{"experiment.p_treatment": p, "sweep.alpha_gap": (gap,)}),
        tmp_path / f"single-{p}-{gap}")
    assert single["gte"] == points[(p, gap)]["gte"]
    assert single["arms"] == points[(p, gap)]["arms"]
  assert set(swept["recommendations"]) == {f"{a}[p={p:g},gap={g:g}]" for a in "TC"
                                           for p, g in points}


def test_a_global_gap_sweep_shares_gc_and_gap_zero_is_exactly_zero(tiny_root, tmp_path):
  swept = simulate.run(small_sim_config(tiny_root, **{"sweep.alpha_gap": (0.0, 0.5, 1.0)}),
                         tmp_path / "sweep")
  by_gap = {p["alpha_gap"]: p for p in swept["points"]}
  for label in ("click", "play_time"):
    assert by_gap[0.0]["gte"][label]["per_rep"] == [0.0, 0.0]
    assert by_gap[0.0]["gt"][label] == by_gap[0.0]["gc"][label]
  single = simulate.run(small_sim_config(tiny_root, **{"sweep.alpha_gap": (0.5,)}),
                          tmp_path / "half")
  for part in ("gte", "gt", "gc"):
    assert single[part] == by_gap[0.5][part]
  default = simulate.run(small_sim_config(tiny_root), tmp_path / "default")
  assert default["gte"] == by_gap[1.0]["gte"]


def test_global_mode_refuses_a_p_sweep(tiny_root, tmp_path):
  from gtesim.errors import InputError  # pylint: disable=g-import-not-at-top
  with pytest.raises(InputError, match="sweep.p_treatment: global mode has no treatment"):
    simulate.run(small_sim_config(tiny_root, **{"sweep.p_treatment": (0.2,)}), tmp_path)
