"""Benchmarks the compiled step: recommendations/s and the share of the device's peak matmul
rate that the step's model arithmetic reaches.

  python scripts/bench.py [--config configs/global.py] [--config.KEY=VALUE ...] [--bs 1,8,64]

The peak is measured once per device: the best rate over large square float32 matmuls. At each
B the chunk of `sim.validate_every` steps is compiled (compile time reported apart), then timed.
Recommendations per second count one per sampled user and step in every world that makes
recommendations (GT and GC each; an A/B world once, whatever its arms), as run.py does. The
last line is one JSON object with every B.
"""

import json
import resource
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags
from ml_collections import config_flags

from gtesim import cli
from gtesim import core
from gtesim import designs
from gtesim import inputs
from gtesim import logs
from gtesim import simulation

_CONFIG = config_flags.DEFINE_config_file("config", "configs/global.py", "Config file.",
                                          lock_config=True)
_BS = flags.DEFINE_string("bs", None, "Comma-separated repetition counts B to time.")
_CHUNKS = flags.DEFINE_integer("chunks", 3, "Timed chunks per B (after the compiling one).")
log = logs.get_logger("bench")


def mlp_flops(width, hidden) -> int:
  """Multiply-add FLOPs (2 per MAC) of one forward row through an MLP with one output."""
  dims = (width,) + tuple(hidden) + (1,)
  return 2 * sum(a * b for a, b in zip(dims[:-1], dims[1:]))


def step_flops(config, width, arms) -> float:
  """Model FLOPs of one step in one world: every arm scores every candidate with every label
  model, and trains on the recommended items (forward + backward = 3x forward)."""
  sim = config.sim
  per_row = sum(mlp_flops(width, l.hidden) for l in config.labels.values())
  return per_row * sim.batch_size * arms * (sim.n_candidate + 3 * sim.updates_per_step)


def peak_matmul_rate(seconds_each=1.0) -> float:
  """The device's best measured float32 FLOP/s over square matmuls of 1024 to 4096."""
  best = 0.0
  for n in (1024, 2048, 4096):
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    f = jax.jit(lambda a: a @ a)
    f(a).block_until_ready()
    start = time.perf_counter()
    while time.perf_counter() - start < seconds_each:
      tic = time.perf_counter()
      f(a).block_until_ready()
      best = max(best, 2 * n ** 3 / (time.perf_counter() - tic))
  return best


def peak_memory_bytes() -> int:
  device = jax.devices()[0]
  stats = device.memory_stats() if device.platform != "cpu" else None
  if stats and "peak_bytes_in_use" in stats:
    return int(stats["peak_bytes_in_use"])
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def bench_one(config, b, peak):
  config = config.copy_and_resolve_references()
  config.repetitions = b
  setup = inputs.build(config)
  sim = core.make_simulation(config, setup)
  fns = core.compile_simulation(sim, setup.mesh)
  worlds = designs.worlds_of(config)
  points = simulation.point_inputs(config, worlds)
  prod = fns.init(setup.env, setup.reps, setup.pretrain_rows)
  state = fns.start(setup.env, setup.reps, prod, points)
  chunk = config.sim.validate_every
  tic = time.perf_counter()
  state, out = fns.chunk(setup.env, setup.reps, points, state, jnp.int32(0))
  jax.block_until_ready(out)
  compile_s = time.perf_counter() - tic
  times = []
  for i in range(_CHUNKS.value):
    tic = time.perf_counter()
    state, out = fns.chunk(setup.env, setup.reps, points, state, jnp.int32((i + 1) * chunk))
    jax.block_until_ready(out)
    times.append(time.perf_counter() - tic)
  step_s = float(np.median(times)) / chunk
  recs = b * worlds.n_worlds * config.sim.batch_size  # As run.py counts.
  flops = step_flops(config, setup.static.width, worlds.arms) * b * worlds.n_worlds
  return {"mode": config.mode, "B": b, "worlds": worlds.n_worlds, "compile_s": compile_s,
          "step_ms": 1e3 * step_s, "rec_per_s": recs / step_s,
          "model_gflop_per_step": flops / 1e9, "model_gflop_per_s": flops / step_s / 1e9,
          "peak_gflop_per_s": peak / 1e9, "flop_fraction": flops / step_s / peak,
          "peak_memory_mib": peak_memory_bytes() / 2**20, "vectorize": sim.vectorize,
          "device": f"{jax.devices()[0].platform}:{jax.devices()[0].device_kind}",
          "n_devices": jax.device_count()}


def main(argv):
  del argv
  logs.setup()
  config = _CONFIG.value
  gpu = jax.devices()[0].platform != "cpu"
  bs = ([int(x) for x in _BS.value.split(",")] if _BS.value else
        [1, 8, 64, 256, 1024] if gpu else [1, 8, 64])
  peak = peak_matmul_rate()
  log.info("peak float32 matmul rate of %s: %.1f GFLOP/s (best of square 1024-4096)",
           jax.devices()[0].device_kind, peak / 1e9)
  rows = []
  for b in bs:
    row = bench_one(config, b, peak)
    rows.append(row)
    log.info("%s B=%-5d compile %.1f s, step %.1f ms, %s rec/s, model %.1f GFLOP/s = %.2f "
             "of peak, peak memory %.0f MiB", row["mode"], b, row["compile_s"], row["step_ms"],
             f"{row['rec_per_s']:,.0f}", row["model_gflop_per_s"], row["flop_fraction"],
             row["peak_memory_mib"])
  print(json.dumps({"peak_gflop_per_s": peak / 1e9, "runs": rows}))


if __name__ == "__main__":
  cli.run(main, tag="bench")
