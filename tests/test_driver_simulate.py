"""A run end to end (driver/simulate.py): invariants of the compiled simulation (SPEC §4-§6)."""

import json

import chex
import jax.numpy as jnp
import numpy as np
import pyarrow.parquet as pq
import pytest

from conftest import small_sim_config
from gtesim import designs
from gtesim.core import mapping, simulation
from gtesim.driver import setup as setup_lib
from gtesim.driver import simulate


def _steps(workdir):
  return pq.read_table(workdir / "steps.parquet").to_pydict()


def test_equal_alphas_give_identical_worlds_and_zero_gte(tiny_root, tmp_path):
  config = small_sim_config(tiny_root)
  for label in config.labels.values():
    label.alpha_T = label.alpha_C = 1.0 if label.type == "binary" else 1e-4
  result = simulate.run(config, tmp_path)
  for name in config.labels:
    assert result["gte"][name]["per_rep"] == [0.0, 0.0]
    assert result["gt"][name]["per_rep"] == result["gc"][name]["per_rep"]
  steps = _steps(tmp_path)
  world = np.array(steps["world"])
  for column in ("outcome_sum/click", "outcome_sum/play_time", "loss/click", "n_recs"):
    values = np.array(steps[column])
    np.testing.assert_array_equal(values[world == "GT"], values[world == "GC"])


def test_repetition_k_equals_a_run_with_rep_offset_k(tiny_root, tmp_path):
  both = simulate.run(small_sim_config(tiny_root), tmp_path / "both")
  one = simulate.run(small_sim_config(tiny_root, repetitions=1, rep_offset=1), tmp_path / "one")
  for part in ("gte", "gt", "gc"):
    for name in ("click", "play_time"):
      assert one[part][name]["per_rep"] == both[part][name]["per_rep"][1:]
  s_both, s_one = _steps(tmp_path / "both"), _steps(tmp_path / "one")
  rep = np.array(s_both["rep"])
  for column in ("loss/click", "loss/play_time", "outcome_sum/play_time"):
    np.testing.assert_array_equal(np.array(s_both[column])[rep == 1], s_one[column])


def test_chunk_is_traced_once(tiny_root):
  """Three chunks of steps, one trace: nothing recompiles after the first step."""
  config = small_sim_config(tiny_root, mode="weighting")
  setup = setup_lib.build(config)
  sim = simulation.make_simulation(config, setup)
  traced = chex.assert_max_traces(sim.chunk, n=1)
  fns = mapping.compile_simulation(sim, setup.mesh)
  chunk = mapping.compile_fn(sim, "chunk", setup.mesh, traced)
  prod, _ = simulate.pretrain_production(config, setup, fns)
  points = simulate.point_inputs(config, designs.worlds_of(config))
  worlds = fns.start(setup.env, setup.reps, prod, points)
  for t in (0, 10, 20):
    worlds, out = chunk(setup.env, setup.reps, points, worlds, jnp.int32(t))
  assert np.asarray(out.n_recs).sum() > 0


def test_resumed_run_equals_uninterrupted_run(tiny_root, tmp_path):
  full = simulate.run(small_sim_config(tiny_root, **{"sim.n_steps": 30}), tmp_path / "full")
  simulate.run(small_sim_config(tiny_root), tmp_path / "cut")  # Stops at step 20.
  resumed = simulate.run(small_sim_config(tiny_root, **{"sim.n_steps": 30}), tmp_path / "cut",
                           resume=True)
  for part in ("gte", "gt", "gc"):
    assert resumed[part] == full[part]
  a, b = _steps(tmp_path / "full"), _steps(tmp_path / "cut")
  assert a == b
  ma = pq.read_table(tmp_path / "full" / "metrics.parquet").to_pydict()
  mb = pq.read_table(tmp_path / "cut" / "metrics.parquet").to_pydict()
  assert ma == mb


def test_resume_refuses_a_changed_config(tiny_root, tmp_path):
  from gtesim.errors import InputError
  simulate.run(small_sim_config(tiny_root), tmp_path)
  with pytest.raises(InputError, match="config key seed is 1 but the run"):
    simulate.run(small_sim_config(tiny_root, seed=1), tmp_path, resume=True)


def test_outputs(tiny_root, tmp_path):
  config = small_sim_config(tiny_root)
  simulate.run(config, tmp_path)
  result = json.loads((tmp_path / "result.json").read_text())
  assert result["mode"] == "global" and result["repetitions"] == 2
  for key in ("n_users", "n_videos", "n_interactions", "click_rate", "mean_play_time"):
    assert key in result["dataset"]
  for part in ("gte", "gt", "gc"):
    for name in ("click", "play_time"):
      entry = result[part][name]
      assert len(entry["per_rep"]) == 2
      assert entry["mean"] == pytest.approx(np.mean(entry["per_rep"]))
      assert entry["std"] == pytest.approx(np.std(entry["per_rep"], ddof=1))
  gte = np.array(result["gte"]["click"]["per_rep"])
  np.testing.assert_allclose(gte, np.array(result["gt"]["click"]["per_rep"]) -
                             np.array(result["gc"]["click"]["per_rep"]))
  # Recommendations: every sampled user gets one unless exhausted.
  steps = _steps(tmp_path)
  n = np.array(steps["n_recs"]) + np.array(steps["n_exhausted"])
  assert (n == config.sim.batch_size).all()
  assert len(steps["step"]) == config.sim.n_steps * 2 * 2
  metrics = pq.read_table(tmp_path / "metrics.parquet").to_pydict()
  assert sorted(set(metrics["step"])) == [0, 10, 20]
  assert {"click/auc", "click/loss", "play_time/rel_error", "play_time/loss"} <= set(metrics)
  for suffix in ("png", "svg"):
    assert (tmp_path / f"figure.{suffix}").stat().st_size > 1000
  lines = (tmp_path / "run.log").read_text().strip().splitlines()
  assert all("[" in line.split(" ", 1)[1][:1] for line in lines)
  assert any("[train] step 20/20" in line for line in lines)
  assert any("[pretrain] epoch 1/2" in line for line in lines)
  assert any("[result] click: GT" in line for line in lines)
  assert json.loads((tmp_path / "encoding.json").read_text())["user"]["numerical"]


def test_exhaustion_is_counted_not_fatal(tiny_root, tmp_path):
  # 64 users x ~90 interactions: 60 steps of all train users exhausts the small histories.
  config = small_sim_config(tiny_root, **{"sim.n_steps": 60, "sim.batch_size": 57,
                                          "sim.n_candidate": 8, "checkpoint_every": 60,
                                          "sim.validate_every": 60, "repetitions": 1})
  result = simulate.run(config, tmp_path)
  assert result["exhausted_users"]["GT"][0] > 0
  assert result["short_users"]["GT"][0] > 0
  steps = _steps(tmp_path)
  assert (np.array(steps["n_recs"]) + np.array(steps["n_exhausted"]) == 57).all()


def test_undefined_model_metrics_are_counted_and_explained(tiny_root, tmp_path):
  """With 2 validation rows most repetitions see one class: AUC is NaN there. result.json's
  mean is over the defined repetitions, and metrics_undefined says in how many and why."""
  result = simulate.run(small_sim_config(tiny_root, **{"sim.eval_rows": 2, "repetitions": 3,
                                                      "sim.n_steps": 10}), tmp_path)
  note = result["metrics_undefined"]["GT"]["val/click/auc"]
  defined = int(note.split("defined in ")[1].split(" of 3")[0])
  assert 0 <= defined < 3 and "AUC needs both classes" in note
  auc = pq.read_table(tmp_path / "metrics.parquet").to_pydict()
  last = [v for s, w, split, v in zip(auc["step"], auc["world"], auc["split"],
                                      auc["click/auc"]) if s == 10 and w == "GT" and
          split == "val"]
  assert len(last) == 3
  assert sum(np.isfinite(last)) == defined
  mean = result["metrics_final_and_at_step_0"]["GT"]["val/click/auc"]
  assert (mean is None) == (defined == 0)
  if defined:
    assert mean == pytest.approx(np.nanmean(last))


def _scalars(folder):
  """{tag: {step: value}} of every TensorBoard event file in `folder` (TFRecord framing:
  length u64, its crc u32, the Event proto, its crc u32)."""
  import struct  # pylint: disable=g-import-not-at-top
  from tensorboardX.proto import event_pb2  # pylint: disable=g-import-not-at-top
  out = {}
  for path in sorted(folder.glob("events.out.tfevents.*")):
    data, pos = path.read_bytes(), 0
    while pos < len(data):
      (n,) = struct.unpack("<Q", data[pos:pos + 8])
      event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + n])
      pos += 16 + n
      for v in event.summary.value:
        out.setdefault(v.tag, {})[event.step] = v.simple_value
  return out


def test_tensorboard_scalars_follow_the_run(tiny_root, tmp_path):
  """Event files beside the tables: the estimate so far ends at result.json's GTE, losses and
  validation metrics per world at every interval, pretraining per epoch."""
  config = small_sim_config(tiny_root, mode="pooling")
  result = simulate.run(config, tmp_path)
  tags = _scalars(tmp_path / "tensorboard")
  for label in config.labels:
    assert sorted(tags[f"estimate/{label}"]) == [10, 20]
    assert tags[f"estimate/{label}"][20] == pytest.approx(result["gte"][label]["mean"],
                                                          rel=1e-6)
    assert sorted(tags[f"pretrain/train_loss/{label}"]) == [1, 2]
    for world in ("T", "C"):
      assert sorted(tags[f"train/loss/{world}/{label}"]) == [10, 20]
  metrics = pq.read_table(tmp_path / "metrics.parquet").to_pydict()
  last = [v for s, w, split, v in zip(metrics["step"], metrics["world"], metrics["split"],
                                      metrics["click/loss"])
          if s == 20 and w == "T" and split == "val"]
  assert tags["val/T/click/loss"][20] == pytest.approx(np.mean(last), rel=1e-6)
  assert tags["rec_per_s"][20] > 0
