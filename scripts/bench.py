"""Benchmarks the compiled step: recommendations/s, the share of the device's peak matmul rate
that the step's model arithmetic reaches, and where a step's time goes.

  python scripts/bench.py [--config configs/global.py] [--config.KEY=VALUE ...]
      [--modes global,pooling | all] [--bs 1,8,64] [--profile_b 8] [--chunks 3]
      [--model_classes mlp,two_tower,wide_deep] [--id_rows 10000,1000000,10000000]
      [--choice_runs 1000 --choice_pairs item_cf:user_cf --choice_designs naive]

The peak is measured once per device: the best rate over large square float32 matmuls. For
each mode and B the chunk of `sim.validate_every` steps is compiled (compile time reported
apart), then timed. Recommendations per second are counted as run.py counts them
(gtesim/throughput.py). Model FLOPs are those the step's work needs, as each model class
counts them (its `flops`): each candidate scored once with its user's arm's label models
(the MLP's first-layer user half once per user), each arm's label models (and the design's
own, e.g. weighting's G) trained on the step's items (forward + backward = 3 forwards per
update).

The profile (at B = --profile_b) times chunks of the core's own cumulative prefixes of the
step (core.step.PHASES, compiled by core.mapping.compile_profile): sampling (users,
assignment, candidates), + features, + scoring (and the argmax), + bookkeeping (outcomes,
used marks, Fenwick trees, per-user sums), + training = the whole step; a phase's cost is the
difference of the fastest chunks of two prefixes, timed interleaved (XLA fuses across
phases, so the split is approximate).
`--model_classes` times every mode and B with each model class for every label (rows carry
`model`). `--id_rows` times the two-tower ranker in global mode at B = 1 with its ID tables
hashed into each number of rows (the sparse update's cost must not grow with the table:
the rows under `id_rows`).
`--choice_runs B` times B runs of the Brennan–Holtz choice world (configs/replication.py) per
ranker pair and design (bench_choice_world; `--modes none` skips the step's benchmarks).
The last line is one JSON object with every mode and B.
"""

import json
import resource
import runpy
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags
from ml_collections import config_flags

from gtesim import cli
from gtesim import designs
from gtesim import logs
from gtesim import models
from gtesim import throughput
from gtesim.config import checks as config_checks
from gtesim.core import mapping
from gtesim.core import simulation
from gtesim.core.step import PHASES
from gtesim.designs import choice_world as choice_designs
from gtesim.driver import choice_world
from gtesim.driver import parallel
from gtesim.driver import setup as setup_lib
from gtesim.environments import choice
from gtesim.models import counting
from gtesim.driver import simulate

DEFAULT_CONFIG = "configs/global.py"
if not any(a == "--config" or a.startswith("--config=") for a in sys.argv[1:]):
  # The default file as if given: a flag default would parse the overrides at import time,
  # before cli.run can turn a bad one into its one-line error.
  sys.argv[1:1] = ["--config", DEFAULT_CONFIG]
_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (default "
                                          f"{DEFAULT_CONFIG}).", lock_config=True)
_MODES = flags.DEFINE_string("modes", "global,pooling",
                             "Comma-separated modes to time on the config, or 'all'.")
_BS = flags.DEFINE_string("bs", None, "Comma-separated repetition counts B to time.")
_CHUNKS = flags.DEFINE_integer("chunks", 3, "Timed chunks per B (after the compiling one).")
_PROFILE_B = flags.DEFINE_integer("profile_b", 8, "B of the per-phase profile (0: none).")
_CLASSES = flags.DEFINE_string("model_classes", "",
                               "Comma-separated model classes to time for every label ('' = "
                               "the config's).")
_ID_ROWS = flags.DEFINE_string("id_rows", "", "Comma-separated ID-table sizes to time the "
                               "two-tower ranker at (global mode, B = 1).")
_CHOICE_RUNS = flags.DEFINE_integer("choice_runs", 0, "B of the choice world's benchmark "
                                    "(configs/replication.py; 0: none).")
_CHOICE_PAIRS = flags.DEFINE_string("choice_pairs", "item_cf:user_cf,random:oracle",
                                    "algo1:algo2 pairs of the choice world's benchmark.")
_CHOICE_DESIGNS = flags.DEFINE_string("choice_designs", "naive",
                                      "Designs of the choice world's benchmark.")
_CPU_DEVICES = flags.DEFINE_integer(
    "cpu_devices", 0, "XLA CPU devices (driver/parallel.split_cpu): 0 leaves one for the "
    "step's benchmarks and gives the choice world's alone (--modes none) one per core; -1 one "
    "per core; n: n.")
_ID_VECTORIZE = flags.DEFINE_string("id_rows_vectorize", "vmap,map",
                                    "sim.vectorize modes of the --id_rows runs.")
log = logs.get_logger("bench")

def step_flops(spec) -> float:
  """Model FLOPs one step of one world needs (see the module docstring): each user scored
  once by its arm's models (by both arms' when the arms rank with different models), and
  every arm's models trained on the step's rows."""
  du, dv = spec.static.user_layout.width, spec.static.video_layout.width
  arms = range(spec.design.arms)
  flops = 0
  for a in arms:
    for model in spec.arm_models(a):
      f = model.flops(du, dv, spec.n_candidate)
      scored = a == 0 or not spec.shared_ranker
      flops += spec.batch_size * (scored * f["score_user"] + 3 * spec.updates_per_step * f["row"])
  return flops + spec.design.learning.extra_flops(spec)


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
  sim = simulation.make_simulation(config, setup)
  fns = mapping.compile_simulation(sim, setup.mesh)
  worlds = sim.worlds
  points = simulate.point_inputs(config, worlds)
  prod = fns.init(setup.env, setup.reps, setup.pretrain_rows)

  def fresh():
    return fns.start(setup.env, setup.reps, prod, points)

  compile_s, step_s = time_chunks(fns.chunk, setup, points, fresh(), sim.chunk_len)
  b = config.repetitions
  flops = b * sum(step_flops(g.spec) * (g.stop - g.start) for g in sim.world_groups)
  row = {"mode": config.mode, "B": b,
         "model": ",".join(sorted({s.model for arm in ("treatment", "control")
                                   for s in models.arm_label_sections(config, arm).values()})),
         "worlds": worlds.n_worlds, "compile_s": compile_s,
         "step_ms": 1e3 * step_s, "rec_per_s": throughput.rec_per_s(config, worlds, 1, step_s),
         "model_gflop_per_step": flops / 1e9, "model_gflop_per_s": flops / step_s / 1e9,
         "flop_fraction": flops / step_s / peak, "peak_memory_mib": peak_memory_bytes() / 2**20,
         "vectorize": sim.vectorize, "sampler": sim.spec.environment.sampler,
         "window_slots": setup.packed.window}
  if row["flop_fraction"] > 1:
    log.warning("%s B=%d: the model FLOPs per second exceed the measured peak (fraction %.2f):"
                " the FLOP count or the peak measurement is wrong", config.mode, b,
                row["flop_fraction"])
  if profile:
    fns_n = [mapping.compile_profile(sim, setup.mesh, n) for n in range(1, len(PHASES) + 1)]
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
  if _CPU_DEVICES.value or _MODES.value == "none":
    parallel.split_cpu(max(_CPU_DEVICES.value, 0))
  base = _CONFIG.value
  config_checks.check(base)
  gpu = jax.devices()[0].platform != "cpu"
  bs = ([int(x) for x in _BS.value.split(",")] if _BS.value else
        [1, 8, 64, 256, 1024] if gpu else [1, 8, 64])
  modes = designs.MODES if _MODES.value == "all" else () if _MODES.value == "none" else tuple(
      _MODES.value.split(","))
  for mode in modes:
    if mode not in designs.MODES:
      raise cli.InputError(f"--modes: '{mode}' is not a mode; use {', '.join(designs.MODES)}.")
  peak = peak_matmul_rate()
  device = jax.devices()[0]
  log.info("peak float32 matmul rate of %s: %.1f GFLOP/s (best of square 1024-4096)",
           device.device_kind, peak / 1e9)
  classes = [c for c in _CLASSES.value.split(",") if c] or [None]
  rows = []
  for b in bs if modes else ():
    config = base.copy_and_resolve_references()
    config.repetitions = b
    setup = setup_lib.build(config, modes)
    for model_class in classes:
      if model_class is not None:
        with_class(config, model_class)
      for mode in modes:
        config.mode = mode
        row = bench_mode(config, setup, peak, b == _PROFILE_B.value)
        rows.append(row)
        log.info("%s %s B=%-5d compile %.1f s, step %.1f ms, %s rec/s, model %.1f GFLOP/s = "
                 "%.2f of peak, peak memory %.0f MiB", mode, row["model"], b, row["compile_s"],
                 row["step_ms"], f"{row['rec_per_s']:,.0f}", row["model_gflop_per_s"],
                 row["flop_fraction"], row["peak_memory_mib"])
  out = {"device": f"{device.platform}:{device.device_kind}", "n_devices": jax.device_count(),
         "peak_gflop_per_s": peak / 1e9, "runs": rows}
  if _ID_ROWS.value:
    out["id_rows"] = bench_id_rows(base, [int(float(n)) for n in _ID_ROWS.value.split(",")],
                                   peak)
  if _CHOICE_RUNS.value:
    out["choice_world"] = bench_choice_world(_CHOICE_RUNS.value, _CHOICE_PAIRS.value.split(","),
                                             _CHOICE_DESIGNS.value.split(","), peak)
  print(json.dumps(out))


def bench_choice_world(n_runs: int, pairs, design_names, peak) -> list:
  """B runs of the choice world (configs/replication.py) per ranker pair and design, in one
  compiled call each: compiled once, then timed. Reports seconds per run and per run per
  CPU core (the issue's target: at most 0.15 s per 100-period run per core), recommendation
  lists per second (users x recommending periods) and the CF rankers' matmul share of peak."""
  config = runpy.run_path("configs/replication.py")["get_config"]()
  config.replication.runs = n_runs
  c = config.choice
  world = choice_world.make_world(config)
  cores = parallel.usable_cores() if jax.devices()[0].platform == "cpu" else 1
  rows = []
  for pair in pairs:
    algo1, algo2 = pair.split(":")
    for name in design_names:
      config.replication.update(algo1=algo1, algo2=algo2, design=name)
      design = choice_designs.make(name)
      clusters = choice_world.clusters_of(config, world)
      draws = [design.draw(choice_world.assignment_rng(0, b), 0.5, c.n_periods, c.n_items,
                           clusters[b]) for b in range(n_runs)]
      seeds = [np.full(4, b, np.uint32) for b in range(n_runs)]
      first = choice_world.simulate(config, (algo1, algo2), design, draws, seeds, world)
      timed = choice_world.simulate(config, (algo1, algo2), design, draws, seeds, world)
      periods = c.n_periods - c.warmup
      spec = choice_world.run_spec(config, (algo1, algo2), design)
      widths = [w for a, b, w in choice.segments(spec, c.n_items) for _ in range(a, b)
                if a >= c.warmup]
      flops = 2 * c.n_users ** 2 * sum(widths) * n_runs * choice.products_per_period(spec)
      row = {"algo1": algo1, "algo2": algo2, "design": name, "runs": n_runs,
             "compile_s": first.seconds - timed.seconds, "seconds": timed.seconds,
             "s_per_run": timed.seconds / n_runs,
             "s_per_run_per_core": timed.seconds / n_runs * cores, "cores": cores,
             "lists_per_s": n_runs * c.n_users * periods / timed.seconds,
             "cf_flop_fraction": flops / timed.seconds / peak,
             "fallback_users_per_run": float(timed.fallback.mean()),
             "whole_list_users_per_run": float(timed.whole.mean()),
             "devices": jax.device_count()}
      rows.append(row)
      log.info("choice world %s vs %s, %s, B=%d: %.1f s (compile %.1f s), %.3f s per run, "
               "%.3f s per run per core (target 0.15), %s lists/s", algo1, algo2, name, n_runs,
               row["seconds"], row["compile_s"], row["s_per_run"], row["s_per_run_per_core"],
               f"{row['lists_per_s']:,.0f}")
  return rows


def with_class(config, model_class: str) -> None:
  for name in config.labels:
    config.labels[name].model = model_class


def bench_id_rows(base, sizes, peak) -> list:
  """Two-tower, global mode, B = 1: the step at each hashed ID-table size, with each
  `--id_rows_vectorize` mode (lax.map copies every world's state in and out of the mapped
  axis once per chunk, an O(table) cost per chunk that vmap does not have)."""
  config = base.copy_and_resolve_references()
  config.repetitions, config.mode = 1, "global"
  with_class(config, "two_tower")
  setup = setup_lib.build(config)
  rows = []
  for vectorize in _ID_VECTORIZE.value.split(","):
    config.sim.vectorize = vectorize
    for n in sizes:
      for name in config.labels:
        config.labels[name].ids.budget, config.labels[name].ids.buckets = 0, n
      row = bench_mode(config, setup, peak, False)
      row["id_rows"] = n
      rows.append(row)
      log.info("two_tower id_rows %s (%s): step %.2f ms, peak memory %.0f MiB", f"{n:,}",
               vectorize, row["step_ms"], row["peak_memory_mib"])
  return rows


if __name__ == "__main__":
  cli.run(main, tag="bench")
