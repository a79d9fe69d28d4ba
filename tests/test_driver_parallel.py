"""Repetitions sharded over several (CPU) devices give the unsharded results."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

import slurm_cluster
from conftest import run_two_processes, small_sim_config
from gtesim.driver import simulate

REPO = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = """
import sys, json
sys.path.insert(0, {tests!r})
from conftest import run_two_processes, small_sim_config
from gtesim.driver import simulate
import jax
assert jax.device_count() == 4, jax.devices()
result = simulate.run(small_sim_config({root!r}, mode={mode!r}, repetitions=4), {out!r})
"""


def test_sharded_over_four_devices_equals_one_device(tiny_root, tmp_path):
  for mode in ("global", "splitting"):
    single = simulate.run(small_sim_config(tiny_root, mode=mode, repetitions=4),
                            tmp_path / f"one-{mode}")
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
               JAX_PLATFORMS="cpu")
    code = SCRIPT.format(tests=str(REPO / "tests"), root=str(tiny_root), mode=mode,
                         out=str(tmp_path / f"four-{mode}"))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=600, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "4 repetitions on 4 device(s)" in out.stderr
    sharded = json.loads((tmp_path / f"four-{mode}" / "result.json").read_text())
    for key in ("gte", "recommendations", "exhausted_users"):
      assert sharded[key] == json.loads(json.dumps(single[key])), key


MULTI = """
import sys
sys.path.insert(0, {tests!r})
from gtesim.driver import parallel
parallel.initialize()
import jax
assert jax.process_count() == 2, jax.process_count()
from conftest import run_two_processes, small_sim_config
from gtesim.driver import simulate
simulate.run(small_sim_config({root!r}, repetitions=4), {out!r})
"""


@pytest.mark.skipif(not slurm_cluster.unavailable(), reason="test_slurm.py runs the same two "
                    "processes as two tasks of a real SLURM job")
def test_two_processes_under_slurm_equal_one_process(tiny_root, tmp_path):
  """Two JAX processes joined by jax.distributed (SLURM variables, gloo CPU collectives)."""
  single = simulate.run(small_sim_config(tiny_root, repetitions=4), tmp_path / "one")
  code = MULTI.format(tests=str(REPO / "tests"), root=str(tiny_root), out=str(tmp_path / "two"))
  assert "4 repetitions on 2 device(s)" in run_two_processes(code, "4242", timeout=600)
  two = json.loads((tmp_path / "two" / "result.json").read_text())  # Written by process 0.
  assert two["gte"] == json.loads(json.dumps(single["gte"]))
