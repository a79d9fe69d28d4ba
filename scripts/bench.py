"""Benchmarks the compiled global-mode step: recommendations/s and the share of the machine's
matmul rate that the step's model arithmetic reaches.

  python scripts/bench.py [--config configs/global.py] [--config.KEY=VALUE ...] [--bs 1,8,64]

Times `sim.validate_every`-step chunks after compilation (compile time reported apart), at
each B (default 1, 8, 64 on CPU; 1, 8, 64, 256, 1024 with a GPU). The last line is one JSON
object for the best B.
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


def step_flops(config, width) -> float:
  """Model FLOPs of one step in one world: scoring every candidate with every label model,
  plus forward and backward (3x forward) on the recommended items per update."""
  sim = config.sim
  per_row = sum(mlp_flops(width, l.hidden) for l in config.labels.values())
  return per_row * sim.batch_size * (sim.n_candidate + 3 * sim.updates_per_step)


def matmul_rate(m, k, n, seconds=1.0) -> float:
  """Measured FLOP/s of a float32 [m, k] x [k, n] matmul on the default device: the best
  of repeated timings over about `seconds`."""
  a = jax.random.normal(jax.random.key(0), (m, k), jnp.float32)
  b = jax.random.normal(jax.random.key(1), (k, n), jnp.float32)
  f = jax.jit(lambda a, b: a @ b)
  f(a, b).block_until_ready()
  best, start = float("inf"), time.perf_counter()
  while time.perf_counter() - start < seconds:
    tic = time.perf_counter()
    f(a, b).block_until_ready()
    best = min(best, time.perf_counter() - tic)
  return 2 * m * k * n / best


def peak_memory_bytes() -> int:
  device = jax.devices()[0]
  stats = device.memory_stats() if device.platform != "cpu" else None
  if stats and "peak_bytes_in_use" in stats:
    return int(stats["peak_bytes_in_use"])
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def bench_one(config, b):
  config = config.copy_and_resolve_references()
  config.repetitions = b
  setup = simulation.build(config)
  chunk = config.sim.validate_every
  fns = simulation.Compiled(setup.spec, chunk, config.pretrain.batch_size)
  alphas = jnp.asarray(simulation.world_alphas(config))
  states = simulation._fresh_states(setup, fns, fns.init(setup.reps, setup.pretrain_rows,
                                                           setup.env), alphas.shape[0])
  tic = time.perf_counter()
  states, out = fns.chunk(states, setup.reps, setup.env, alphas, jnp.int32(0))
  jax.block_until_ready(out)
  compile_s = time.perf_counter() - tic
  times = []
  for i in range(_CHUNKS.value):
    tic = time.perf_counter()
    states, out = fns.chunk(states, setup.reps, setup.env, alphas, jnp.int32((i + 1) * chunk))
    jax.block_until_ready(out)
    times.append(time.perf_counter() - tic)
  step_s = float(np.median(times)) / chunk
  worlds = alphas.shape[0] * alphas.shape[1]
  recs = b * worlds * config.sim.batch_size
  flops = step_flops(config, setup.spec.static.width) * b * worlds
  first_hidden = next(iter(config.labels.values())).hidden[0]
  rate = matmul_rate(b * worlds * config.sim.batch_size * config.sim.n_candidate,
                     setup.spec.static.width, first_hidden)
  return {"B": b, "compile_s": compile_s, "step_ms": 1e3 * step_s, "rec_per_s": recs / step_s,
          "model_gflop_per_step": flops / 1e9, "model_gflop_per_s": flops / step_s / 1e9,
          "matmul_gflop_per_s": rate / 1e9, "flop_fraction": flops / step_s / rate,
          "peak_memory_mib": peak_memory_bytes() / 2**20,
          "device": f"{jax.devices()[0].platform}:{jax.devices()[0].device_kind}",
          "n_devices": jax.device_count()}


def main(argv):
  del argv
  logs.setup()
  config = _CONFIG.value
  gpu = jax.devices()[0].platform != "cpu"
  bs = ([int(x) for x in _BS.value.split(",")] if _BS.value else
        [1, 8, 64, 256, 1024] if gpu else [1, 8, 64])
  rows = []
  for b in bs:
    row = bench_one(config, b)
    rows.append(row)
    log.info("B=%-5d compile %.1f s, step %.1f ms, %s rec/s, model %.1f GFLOP/s = %.2f of "
             "the %.1f GFLOP/s matmul rate, peak memory %.0f MiB", b, row["compile_s"],
             row["step_ms"], f"{row['rec_per_s']:,.0f}", row["model_gflop_per_s"],
             row["flop_fraction"], row["matmul_gflop_per_s"], row["peak_memory_mib"])
  best = max(rows, key=lambda r: r["rec_per_s"])
  print(json.dumps({**best, "all": rows}))


if __name__ == "__main__":
  cli.run(main, tag="bench")
