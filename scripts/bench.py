"""Benchmarks the compiled step: recommendations/s, the share of the device's peak matmul rate
that the step's model arithmetic reaches, and where a step's time goes.

  python scripts/bench.py [--config configs/global.py] [--config.KEY=VALUE ...]
      [--modes global,pooling | all] [--bs 1,8,64] [--profile_b 8] [--chunks 3]

The peak is measured once per device: the best rate over large square float32 matmuls. For
each mode and B the chunk of `sim.validate_every` steps is compiled (compile time reported
apart), then timed. Recommendations per second are counted as run.py counts them
(gtesim/throughput.py). Model FLOPs are those the step's work needs: each candidate scored once
with its user's arm's label models (the first layer's user half once per user,
LabelModel.apply_pairs), each arm's label models (and the weight model) trained on the step's
items (forward + backward = 3 forwards per update).

The profile (at B = --profile_b) times chunks of cumulative prefixes of the step: sampling
(users, assignment, candidates), + features, + scoring (and the argmax), + bookkeeping
(outcomes, used marks, Fenwick trees, per-user sums), + training = the whole step; a phase's
cost is the difference of the fastest chunks of two prefixes, timed interleaved (XLA fuses
across phases, so the split is approximate).
The last line is one JSON object with every mode and B.
"""

import dataclasses
import json
import resource
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags
from jax import lax
from ml_collections import config_flags

from gtesim import cli
from gtesim import core
from gtesim import designs
from gtesim import inputs
from gtesim import logs
from gtesim import simulation
from gtesim import step as step_lib
from gtesim import throughput

_CONFIG = config_flags.DEFINE_config_file("config", "configs/global.py", "Config file.",
                                          lock_config=True)
_MODES = flags.DEFINE_string("modes", "global,pooling",
                             "Comma-separated modes to time on the config, or 'all'.")
_BS = flags.DEFINE_string("bs", None, "Comma-separated repetition counts B to time.")
_CHUNKS = flags.DEFINE_integer("chunks", 3, "Timed chunks per B (after the compiling one).")
_PROFILE_B = flags.DEFINE_integer("profile_b", 8, "B of the per-phase profile (0: none).")
log = logs.get_logger("bench")

PHASES = ("sampling", "features", "scoring", "bookkeeping", "training")


def mlp_flops(width, hidden) -> int:
  """Multiply-add FLOPs (2 per MAC) of one forward row through an MLP with one output."""
  dims = (width,) + tuple(hidden) + (1,)
  return 2 * sum(a * b for a, b in zip(dims[:-1], dims[1:]))


def scoring_flops(du: int, dv: int, hidden, k: int) -> int:
  """FLOPs of scoring one user's k candidates (LabelModel.apply_pairs): the first layer's user
  half once, its video half and the deeper layers once per candidate."""
  if not hidden:
    return 2 * (du + k * dv)
  return 2 * du * hidden[0] + k * (2 * dv * hidden[0] + mlp_flops(hidden[0], hidden[1:]))


def step_flops(config, static, arms: int) -> float:
  """Model FLOPs one step of one world needs (see the module docstring)."""
  sim = config.sim
  du, dv = static.user_layout.width, static.video_layout.width
  flops = 0
  for label in config.labels.values():
    flops += sim.batch_size * (scoring_flops(du, dv, tuple(label.hidden), sim.n_candidate) +
                               3 * sim.updates_per_step * arms * mlp_flops(du + dv, label.hidden))
  if config.mode == "weighting":  # G: trained, plus the forward passes of its metrics and g.
    exp = config.experiment
    width = dv if exp.weight_features == "video" else du + dv
    flops += mlp_flops(width, exp.weight_model.hidden) * sim.batch_size * (
        3 * sim.updates_per_step + 2)
  return flops


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


def partial_step(spec, env, rep, point, world, t, n_phases: int):
  """The first `n_phases` phases of step_lib.step; returns (world, a checksum of the last
  phase's outputs, which keeps them computed)."""
  d = step_lib.draw(spec, env, rep, point, world, t)
  if n_phases == 1:
    return world, (jnp.sum(d.video) + jnp.sum(d.n_eligible)).astype(jnp.float32)
  order = step_lib.arm_order(spec, d)
  x = step_lib.features(spec, env, rep, d, order)
  if n_phases == 2:
    return world, jnp.sum(x[0]) + jnp.sum(x[1])
  s = step_lib.choose(spec, point, world, d, x, order)
  if n_phases == 3:
    return world, jnp.sum(s.x_rec) + jnp.sum(s.choice)
  if n_phases == 4:
    y, rec_ok, used, tree = step_lib.record(spec, env, rep, world, d, s, t)
    user_sum, user_n, sums = step_lib.tally(spec, world, d, y, rec_ok, t)
    world = dataclasses.replace(world, used=used, tree=tree, user_sum=user_sum, user_n=user_n)
    return world, jnp.sum(sums[0])
  world, out = step_lib.step(spec, env, rep, point, world, t)
  return world, jnp.sum(out.outcome_sum) + jnp.sum(out.loss)


def compile_prefix(sim: core.Simulation, mesh, n_phases: int):
  """A jitted chunk of `partial_step`s over every repetition and world."""
  def chunk(env, rep, points, worlds, t0):
    def one(point, world):
      return lax.scan(lambda w, t: partial_step(sim.spec, env, rep, point, w, t, n_phases),
                      world, t0 + jnp.arange(sim.chunk_len))
    return core.map_axis(one, sim.vectorize)(points, worlds)
  return jax.jit(core.over_reps(chunk, core.MAPPED_ARGS["chunk"], mesh, sim.vectorize))


def time_chunks(fn, setup, points, state, chunk_len: int):
  """(compile seconds, median seconds per step) of `fn` over chunks from `state`."""
  tic = time.perf_counter()
  state, out = fn(setup.env, setup.reps, points, state, jnp.int32(0))
  jax.block_until_ready(out)
  compile_s = time.perf_counter() - tic
  times = []
  for i in range(_CHUNKS.value):
    tic = time.perf_counter()
    state, out = fn(setup.env, setup.reps, points, state, jnp.int32((i + 1) * chunk_len))
    jax.block_until_ready(out)
    times.append(time.perf_counter() - tic)
  return compile_s, float(np.median(times)) / chunk_len


def bench_mode(config, setup, peak, profile: bool) -> dict:
  """Times one mode's chunk at the setup's B (and its per-phase profile)."""
  sim = core.make_simulation(config, setup)
  fns = core.compile_simulation(sim, setup.mesh)
  worlds = designs.worlds_of(config)
  points = simulation.point_inputs(config, worlds)
  prod = fns.init(setup.env, setup.reps, setup.pretrain_rows)

  def fresh():
    return fns.start(setup.env, setup.reps, prod, points)

  compile_s, step_s = time_chunks(fns.chunk, setup, points, fresh(), sim.chunk_len)
  b = config.repetitions
  flops = step_flops(config, setup.static, worlds.arms) * b * worlds.n_worlds
  row = {"mode": config.mode, "B": b, "worlds": worlds.n_worlds, "compile_s": compile_s,
         "step_ms": 1e3 * step_s, "rec_per_s": throughput.rec_per_s(config, worlds, 1, step_s),
         "model_gflop_per_step": flops / 1e9, "model_gflop_per_s": flops / step_s / 1e9,
         "flop_fraction": flops / step_s / peak, "peak_memory_mib": peak_memory_bytes() / 2**20,
         "vectorize": sim.vectorize, "sampler": ("fenwick" if sim.spec.uses_tree else
                                                 "window" if config.sim.environment != "latent"
                                                 else "catalogue"),
         "window_slots": setup.packed.window}
  if row["flop_fraction"] > 1:
    log.warning("%s B=%d: the model FLOPs per second exceed the measured peak (fraction %.2f):"
                " the FLOP count or the peak measurement is wrong", config.mode, b,
                row["flop_fraction"])
  if profile:
    fns_n = [compile_prefix(sim, setup.mesh, n) for n in range(1, len(PHASES) + 1)]
    states = [fresh() for _ in fns_n]
    best = [np.inf] * len(fns_n)
    for i in range(_CHUNKS.value + 1):  # Interleaved, so that a slow spell hits every prefix.
      for n, fn in enumerate(fns_n):
        tic = time.perf_counter()
        states[n], out = fn(setup.env, setup.reps, points, states[n],
                            jnp.int32(i * sim.chunk_len))
        jax.block_until_ready(out)
        if i:  # The first chunk compiles.
          best[n] = min(best[n], (time.perf_counter() - tic) / sim.chunk_len)
    phase_ms = np.diff([0.0] + [1e3 * t for t in best])
    row["phase_ms"] = dict(zip(PHASES, phase_ms.tolist()))
    log.info("%s B=%d profile (ms per step, differences of the fastest chunks of cumulative "
             "prefixes): %s", config.mode, b, ", ".join(f"{p} {m:.2f}"
                                                        for p, m in zip(PHASES, phase_ms)))
  return row


def main(argv):
  del argv
  logs.setup()
  base = _CONFIG.value
  gpu = jax.devices()[0].platform != "cpu"
  bs = ([int(x) for x in _BS.value.split(",")] if _BS.value else
        [1, 8, 64, 256, 1024] if gpu else [1, 8, 64])
  modes = designs.MODES if _MODES.value == "all" else tuple(_MODES.value.split(","))
  for mode in modes:
    if mode not in designs.MODES:
      raise cli.InputError(f"--modes: '{mode}' is not a mode; use {', '.join(designs.MODES)}.")
  peak = peak_matmul_rate()
  device = jax.devices()[0]
  log.info("peak float32 matmul rate of %s: %.1f GFLOP/s (best of square 1024-4096)",
           device.device_kind, peak / 1e9)
  rows = []
  for b in bs:
    config = base.copy_and_resolve_references()
    config.repetitions = b
    setup = inputs.build(config, modes)
    for mode in modes:
      config.mode = mode
      row = bench_mode(config, setup, peak, b == _PROFILE_B.value)
      rows.append(row)
      log.info("%s B=%-5d compile %.1f s, step %.1f ms, %s rec/s, model %.1f GFLOP/s = %.2f "
               "of peak, peak memory %.0f MiB", mode, b, row["compile_s"], row["step_ms"],
               f"{row['rec_per_s']:,.0f}", row["model_gflop_per_s"], row["flop_fraction"],
               row["peak_memory_mib"])
  print(json.dumps({"device": f"{device.platform}:{device.device_kind}",
                    "n_devices": jax.device_count(), "peak_gflop_per_s": peak / 1e9,
                    "runs": rows}))


if __name__ == "__main__":
  cli.run(main, tag="bench")
