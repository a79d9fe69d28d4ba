"""Mapping the per-repetition functions over repetitions and worlds, and compiling them.

Repetitions and worlds are mapped with `lax.map` on CPU and `vmap` on accelerators
(`sim.vectorize`). XLA:CPU compiles a reduction or a transposed matmul differently depending
on the size of a vmapped batch axis (e.g. a 1,024-row sum gives another float32 rounding at
B >= 4 than at B <= 3), and the argmax over candidates amplifies one ulp into another
recommendation; under `lax.map` every repetition runs the same per-repetition program, so
repetition b of a B-run equals the run of that repetition alone, bit for bit. On CPU, vmap
buys no throughput (the per-repetition step already fills the cores). The repetition axis is
split over a 1-D device mesh (`REP_AXIS`) with shard_map.
"""

import dataclasses
from typing import Callable

import jax
from jax import lax
from jax.sharding import PartitionSpec

REP_AXIS = "rep"  # The mesh axis of the repetitions (driver/parallel.py builds the mesh).


def vectorize_mode(config) -> str:
  """"map" or "vmap" from `sim.vectorize` ("auto": map on CPU, vmap on accelerators)."""
  mode = config.sim.vectorize
  if mode == "auto":
    return "map" if jax.devices()[0].platform == "cpu" else "vmap"
  return mode


def map_axis(fn: Callable, mode: str) -> Callable:
  """fn applied along the leading axis of every argument."""
  if mode == "vmap":
    return jax.vmap(fn)
  return lambda *args: lax.map(lambda a: fn(*a), args)


def over_reps(fn: Callable, mapped: tuple, mesh, mode: str) -> Callable:
  """fn mapped over the repetition axis of the `mapped` arguments, split over the mesh."""

  def local(*args):
    def one(*sliced):
      it = iter(sliced)
      return fn(*[next(it) if m else a for a, m in zip(args, mapped)])
    return map_axis(one, mode)(*[a for a, m in zip(args, mapped) if m])

  specs = tuple(PartitionSpec(REP_AXIS) if m else PartitionSpec() for m in mapped)
  return jax.shard_map(local, mesh=mesh, in_specs=specs, out_specs=PartitionSpec(REP_AXIS))


@dataclasses.dataclass(frozen=True)
class Compiled:
  """A Simulation's functions over all repetitions, jit-compiled (arguments as in
  Simulation, with a leading repetition axis on rep, rows, prod and worlds)."""
  init: Callable
  pretrain_epoch: Callable
  start: Callable
  chunk: Callable
  evaluate: Callable


# Which arguments of each Simulation function carry the repetition axis.
MAPPED_ARGS = {"init": (False, True, True), "pretrain_epoch": (False, True, True, True, False),
               "start": (False, True, True, False), "chunk": (False, True, False, True, False),
               "evaluate": (False, True, True)}
DONATED = {"pretrain_epoch": 3, "chunk": 3}  # The state argument, updated in place.


def compile_fn(sim, name: str, mesh, fn: Callable | None = None) -> Callable:
  """One of the Simulation's functions (or `fn` with its signature) over all repetitions,
  jit-compiled."""
  return jax.jit(over_reps(fn or getattr(sim, name), MAPPED_ARGS[name], mesh, sim.vectorize),
                 donate_argnums=DONATED.get(name, ()))


def compile_simulation(sim, mesh) -> Compiled:
  return Compiled(**{name: compile_fn(sim, name, mesh) for name in MAPPED_ARGS})


def compile_profile(sim, mesh, n_phases: int) -> Callable:
  """A compiled chunk of the step's first `n_phases` phases (bench.py): like `chunk`, the
  second output is a checksum per step instead of the StepOut."""
  return compile_fn(sim, "chunk", mesh, lambda *args: sim.chunk(*args, n_phases=n_phases))
