"""The pure simulation core: `make_simulation` returns the functions everything else calls.

The shape follows PureJaxRL (see STYLE.md): `make_simulation(config, setup)` does the static
Python set-up and returns a `Simulation` whose methods are pure, jit-able functions of ONE
repetition:

  init(env, rep, rows) -> Production                       fresh label models
  pretrain_epoch(env, rep, rows, prod, epoch) -> (Production, metrics)
  start(env, rep, prod, points) -> World [W]              every world from the production model
  chunk(env, rep, points, worlds, t0) -> (World [W], StepOut [W, T])   T = chunk_len steps
  evaluate(env, rep, worlds) -> {"val"|"train": {metric: [W, A]}, "user_var": [W, L],
                                 "unit_var", "unit_count": [W, L] (cluster design)}

`points` (designs.Point, stacked over worlds) carries the traced p_treatment and alphas, so a
sweep is one more mapped axis of the same compiled function. `compile_simulation` maps these
over the repetition axis (split over the device mesh) and jit-compiles them; the host driver
(`simulation.py`), the study, the benchmark and the tests call those.

Repetitions and worlds are mapped with `lax.map` on CPU and `vmap` on accelerators
(`sim.vectorize`). XLA:CPU compiles a reduction or a transposed matmul differently depending
on the size of a vmapped batch axis (e.g. a 1,024-row sum gives another float32 rounding at
B >= 4 than at B <= 3), and the argmax over candidates amplifies one ulp into another
recommendation; under `lax.map` every repetition runs the same per-repetition program, so
repetition b of a B-run equals the run of that repetition alone, bit for bit. On CPU, vmap
buys no throughput (the per-repetition step already fills the cores).
"""

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
from jax import lax
from jax.sharding import PartitionSpec

from gtesim import designs
from gtesim import environments
from gtesim import estimators
from gtesim import models as models_lib
from gtesim import parallel
from gtesim import pretrain
from gtesim import rng
from gtesim import slot_sampler
from gtesim import step as step_lib
from gtesim.errors import GtesimError


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


@dataclasses.dataclass(frozen=True)
class Simulation:
  """The pure functions of one repetition (see the module docstring)."""
  spec: step_lib.SimSpec
  chunk_len: int  # Steps per chunk (sim.validate_every).
  pretrain_batch: int
  patience: int
  min_delta: float
  vectorize: str  # "map" or "vmap" over worlds (and repetitions, in compile_simulation).

  def init(self, env, rep, rows) -> pretrain.Production:
    return pretrain.init(self.spec, env, rep, rows)

  def pretrain_epoch(self, env, rep, rows, prod, index):
    return pretrain.epoch(self.spec, self.pretrain_batch, self.patience, self.min_delta, env,
                          rep, rows, prod, index)

  def start(self, env, rep, prod: pretrain.Production, points: designs.Point):
    """Worlds [W] whose every arm starts from the production models and their optimizer
    state; G (weighting) starts at G(x) = p, the Bayes-optimal model before the experiment
    (Z is independent of x), with random hidden layers."""
    spec = self.spec
    arms = spec.design.arms

    def one(point):
      g_params, g_opt = (), ()
      if spec.design.uses_weight_model:
        g = spec.weight_model
        width = spec.static.width
        if spec.design.weight_features == "video":
          width = spec.static.video_layout.width
        p = g.init(jax.random.fold_in(rng.stream(rep.key, "init"), len(spec.models)), width)
        last = f"Dense_{len(g.module.hidden)}"
        head = {"kernel": jnp.zeros_like(p["params"][last]["kernel"]),
                "bias": jnp.full_like(p["params"][last]["bias"],
                                      jnp.log(point.p_treatment / (1 - point.p_treatment)))}
        g_params = ({"params": {**p["params"], last: head}},)
        g_opt = (g.optimizer.init(g_params[0]),)
      user_sum = user_n = None
      if spec.tracks_users:
        user_sum = jnp.zeros((spec.n_train, arms, len(spec.models)), jnp.float32)
        user_n = jnp.zeros((spec.n_train, arms), jnp.float32)
      tree = None
      if spec.environment == "latent":
        used = jnp.full((spec.n_train, spec.history_slots), -1, jnp.int32)
      else:
        used = jnp.zeros((spec.static.n_pages, spec.static.page_slots), bool)
        if spec.uses_tree:
          tree = slot_sampler.build(step_lib.eligible_counts(spec, env, rep, point),
                                    env.page_rank)
      return step_lib.World(
          tuple(prod.best_params for _ in range(arms)),
          tuple(prod.best_opt_state for _ in range(arms)), g_params, g_opt, used, user_sum,
          user_n, tree)

    return map_axis(one, self.vectorize)(points)

  def chunk(self, env, rep, points, worlds, t0):
    spec = self.spec

    def one(point, world):
      return lax.scan(lambda w, t: step_lib.step(spec, env, rep, point, w, t), world,
                      t0 + jnp.arange(self.chunk_len))

    return map_axis(one, self.vectorize)(points, worlds)

  def evaluate(self, env, rep, worlds) -> dict:
    spec = self.spec

    def one(world):
      per_arm = [{split: step_lib.evaluate_models(spec, env, rep, p, rows)
                  for split, rows in (("val", rep.val_rows), ("train", rep.train_rows))}
                 for p in world.params]
      out = jax.tree.map(lambda *xs: jnp.stack(xs), *per_arm)
      if spec.tracks_users:
        out["user_var"] = step_lib.clustered_variance(world)
      if spec.design.name == "cluster":
        unit_sum, unit_n = step_lib.unit_sums(world, rep.user_cluster[rep.train_users],
                                              spec.n_units)
        out["unit_var"] = estimators.clustered_variance(unit_sum, unit_n, xp=jnp)
        count = jnp.sum(jnp.sum(unit_n, 1) > 0)  # Clusters with a recommendation.
        out["unit_count"] = jnp.full(len(spec.models), count, jnp.float32)
      return out

    return map_axis(one, self.vectorize)(worlds)


def make_simulation(config, setup) -> Simulation:
  """The Simulation of a config over a built Setup (inputs.build)."""
  design = designs.design_of(config)
  # A design whose per-repetition set-up is missing would silently index a placeholder.
  needs = {"codiverted": ("video_u", len(setup.ds.video_ids)),
           "cluster": ("user_cluster", len(setup.ds.user_ids))}
  if design.name in needs:
    field, size = needs[design.name]
    if getattr(setup.reps_host, field).shape[-1] != size:
      raise GtesimError(f"the {design.name} design needs per-repetition {field} [{size}], but "
                        f"the Setup was built without it: build it with inputs.build(config, "
                        f"modes=(..., '{design.name}')).")
  sim = config.sim
  spec = step_lib.SimSpec(
      setup.static, models_lib.label_models(config), sim.batch_size, sim.n_candidate,
      sim.updates_per_step, setup.n_train, design,
      models_lib.weight_model(config) if design.uses_weight_model else None,
      environment=sim.environment, retrieval=sim.retrieval,
      latent_columns=tuple(config.labels[n].column for n in config.labels),
      expected=sim.outcome == "expected", candidate_draws=sim.candidate_draws,
      history_slots=environments.history_slots(sim.n_steps, setup.n_train // sim.batch_size),
      n_units=setup.n_clusters, arm_blocks=sim.arm_blocks)
  pre = config.pretrain
  return Simulation(spec, config.sim.validate_every, pre.batch_size, pre.patience,
                    pre.min_delta, vectorize_mode(config))


def over_reps(fn: Callable, mapped: tuple, mesh, mode: str) -> Callable:
  """fn mapped over the repetition axis of the `mapped` arguments, split over the mesh."""

  def local(*args):
    def one(*sliced):
      it = iter(sliced)
      return fn(*[next(it) if m else a for a, m in zip(args, mapped)])
    return map_axis(one, mode)(*[a for a, m in zip(args, mapped) if m])

  specs = tuple(PartitionSpec(parallel.AXIS) if m else PartitionSpec() for m in mapped)
  return jax.shard_map(local, mesh=mesh, in_specs=specs,
                       out_specs=PartitionSpec(parallel.AXIS))


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


def compile_simulation(sim: Simulation, mesh) -> Compiled:
  return Compiled(**{
      name: jax.jit(over_reps(getattr(sim, name), mapped, mesh, sim.vectorize),
                    donate_argnums=DONATED.get(name, ()))
      for name, mapped in MAPPED_ARGS.items()})
