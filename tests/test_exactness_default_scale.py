"""Exactness at the default data size (synthetic Pure-like: 27,285 users, window 2,304).

Repetition k alone and merged array pieces equal the one-process run bit for bit. (On 64 users
the vmapped program happened to agree; at this size XLA:CPU compiled batch-size-dependent
reductions, which is why repetitions are mapped.) Two joined JAX processes give the same
recommendations, estimates and pretraining; their validation metrics agree to float32 rounding
only: XLA:CPU's matmul blocking follows the threads a device has, which the process layout
changes (README, "Exactness").
"""

import json
import pathlib

import jax.numpy as jnp
import numpy as np
import pytest

from conftest import run_two_processes
import jax

from gtesim import designs
from gtesim.config import defaults as default_config
from gtesim.core import mapping, simulation
from gtesim.driver import setup as setup_lib
from gtesim.driver import simulate
from gtesim.environments import fenwick
from gtesim.study import merge

REPO = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from gtesim.driver import parallel
parallel.initialize()
import jax
assert jax.process_count() == 2, jax.process_count()
from test_exactness_default_scale import default_scale_config
from gtesim.driver import simulate
simulate.run(default_scale_config({root!r}, 4, 0), {out!r})
"""


def default_scale_config(root, repetitions, rep_offset):
  """The default config and data size, 20 steps (pretraining cut to 2 epochs for time)."""
  config = default_config.get_config()
  config.data.root = str(root)
  config.repetitions = repetitions
  config.rep_offset = rep_offset
  config.sim.n_steps = 20
  config.sim.validate_every = 10
  config.checkpoint_every = 10
  config.pretrain.max_epochs = 2
  return config


@pytest.fixture(scope="module")
def pure_root(tmp_path_factory):
  return tmp_path_factory.mktemp("pure")


def _comparable(result):
  result = json.loads(json.dumps(result))
  for key in ("timing", "rep_offset", "repetitions"):
    result.pop(key)
  result["pretrain"].pop("wall_s")
  return result


def _metrics(result):
  return {(g, k): v for g, d in result["metrics_final_and_at_step_0"].items()
          for k, v in d.items()}


def test_rep_offset_merge_and_processes_are_exact_at_default_scale(pure_root, tmp_path):
  full = simulate.run(default_scale_config(pure_root, 4, 0), tmp_path / "full")
  single = simulate.run(default_scale_config(pure_root, 1, 2), tmp_path / "rep2")
  for label in ("click", "play_time"):
    assert single["gte"][label]["per_rep"] == full["gte"][label]["per_rep"][2:3]
    assert single["gt"][label]["per_rep"] == full["gt"][label]["per_rep"][2:3]
  simulate.run(default_scale_config(pure_root, 2, 0), tmp_path / "a")
  simulate.run(default_scale_config(pure_root, 2, 2), tmp_path / "b")
  merged = merge.merge([tmp_path / "a", tmp_path / "b"], tmp_path / "merged")
  assert _comparable(merged) == _comparable(full)
  code = SCRIPT.format(tests=str(REPO / "tests"), root=str(pure_root), out=str(tmp_path / "two"))
  assert "4 repetitions on 2 device(s)" in run_two_processes(code, "4243")
  two = _comparable(json.loads((tmp_path / "two" / "result.json").read_text()))
  one = _comparable(full)
  assert _metrics(two) == pytest.approx(_metrics(one), rel=1e-6)
  for result in (one, two):
    result.pop("metrics_final_and_at_step_0")
  assert two == one  # Recommendations, estimates, pretraining curves: bit for bit.


def test_fenwick_trees_match_the_used_mask_at_default_scale(pure_root):
  """Co-diverted (two trees per world), 40 steps of 256 users on the default data: every
  recommendation marks a new slot, and the trees equal a rebuild from the used mask."""
  config = default_scale_config(pure_root, 1, 0)
  config.mode = "codiverted"
  setup = setup_lib.build(config)
  fns = mapping.compile_simulation(simulation.make_simulation(config, setup), setup.mesh)
  points = simulate.point_inputs(config, designs.worlds_of(config))
  prod = fns.init(setup.env, setup.reps, setup.pretrain_rows)
  worlds = fns.start(setup.env, setup.reps, prod, points)
  n_recs = 0
  for t0 in range(0, 40, config.sim.validate_every):
    worlds, out = fns.chunk(setup.env, setup.reps, points, worlds, jnp.int32(t0))
    n_recs += int(np.asarray(out.n_recs).sum())
  used = np.asarray(worlds.memory.used[0, 0])
  assert n_recs == used.sum() and n_recs > 0.9 * 40 * 256
  video = setup.packed.video[:setup.packed.n_env_pages]
  ok = (video >= 0) & setup.reps_host.train_video[0][np.maximum(video, 0)] & ~used
  rep = jax.tree.map(lambda a: a[0], setup.reps_host)
  treated = np.asarray(designs.make(config, setup.ds).exposure.video_treated(
      rep, np.maximum(video, 0), config.experiment.p_treatment))
  counts = np.stack([(ok & treated).sum(1), (ok & ~treated).sum(1)]).astype(np.int32)
  np.testing.assert_array_equal(worlds.memory.tree[0, 0], fenwick.build(
      jnp.asarray(counts), setup.env.environment.page_rank))
