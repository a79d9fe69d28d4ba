"""The pure per-repetition functions everything else calls (the PureJaxRL shape, STYLE.md).

`make_simulation(config, setup)` does the static Python set-up (the design, environment,
label models and exploration rule from their registries, each built once) and returns a
`Simulation` (with `worlds`, what the driver reports by) whose methods are pure, jit-able
functions of ONE repetition:

  init(env, rep, rows) -> Production                       fresh label models
  pretrain_epoch(env, rep, rows, prod, epoch) -> (Production, metrics)
  start(env, rep, prod, points) -> World [W]              every world from the production model
  chunk(env, rep, points, worlds, t0) -> (World [W], StepOut [W, T])   T = chunk_len steps
  evaluate(env, rep, worlds) -> {"val"|"train": {metric: [W, A]}, + the design's own
                                 ("user_var": [W, L]; cluster: "unit_var", "unit_count")}

`points` (core.state.Point, stacked over worlds) carries the traced p_treatment and alphas,
so a sweep is one more mapped axis of the same compiled function. `mapping.compile_simulation`
maps these over the repetition axis and jit-compiles them.
"""

import dataclasses

import jax
import jax.numpy as jnp
from jax import lax

from gtesim import designs
from gtesim import environments
from gtesim import models as models_lib
from gtesim.core import exploration
from gtesim.core import pretrain
from gtesim.core import step as step_lib
from gtesim.core.evaluation import evaluate_models
from gtesim.core.mapping import map_axis, vectorize_mode
from gtesim.core.state import World
from gtesim.designs.worlds import Worlds
from gtesim.errors import GtesimError


@dataclasses.dataclass(frozen=True)
class Simulation:
  """The pure functions of one repetition (see the module docstring)."""
  spec: step_lib.SimSpec
  chunk_len: int  # Steps per chunk (sim.validate_every).
  pretrain_batch: int
  patience: int
  min_delta: float
  vectorize: str  # "map" or "vmap" over worlds (and repetitions, in compile_simulation).
  worlds: Worlds  # The run's design (the spec's), sweep points and exploration rule.

  def init(self, env, rep, rows) -> pretrain.Production:
    return pretrain.init(self.spec, env, rep, rows)

  def pretrain_epoch(self, env, rep, rows, prod, index):
    return pretrain.epoch(self.spec, self.pretrain_batch, self.patience, self.min_delta, env,
                          rep, rows, prod, index)

  def start(self, env, rep, prod: pretrain.Production, points):
    """Worlds [W] whose every arm starts from the production models and their optimizer
    state (a production system keeps training, it does not reset Adam), with the design's
    and the environment's fresh state."""
    spec = self.spec

    def one(point):
      return World(tuple(prod.best_params for _ in range(spec.design.arms)),
                   tuple(prod.best_opt_state for _ in range(spec.design.arms)),
                   spec.environment.init_memory(spec, env, rep, point),
                   spec.design.init_state(spec, rep, point))

    return map_axis(one, self.vectorize)(points)

  def chunk(self, env, rep, points, worlds, t0, n_phases: int = len(step_lib.PHASES)):
    """`chunk_len` scanned steps of every world (bench.py: only their first n_phases)."""
    spec = self.spec

    def one(point, world):
      if n_phases == len(step_lib.PHASES):
        fn = lambda w, t: step_lib.step(spec, env, rep, point, w, t)
      else:
        fn = lambda w, t: step_lib.step_prefix(spec, env, rep, point, w, t, n_phases)
      return lax.scan(fn, world, t0 + jnp.arange(self.chunk_len))

    return map_axis(one, self.vectorize)(points, worlds)

  def evaluate(self, env, rep, worlds) -> dict:
    spec = self.spec

    def one(world):
      per_arm = [{split: evaluate_models(spec, env, rep, p, rows)
                  for split, rows in (("val", rep.val_rows), ("train", rep.train_rows))}
                 for p in world.params]
      out = jax.tree.map(lambda *xs: jnp.stack(xs), *per_arm)
      out.update(spec.design.evaluate(spec, world.design, rep))
      return out

    return map_axis(one, self.vectorize)(worlds)


def make_simulation(config, setup) -> Simulation:
  """The Simulation of a config over a built Setup (driver.setup.build)."""
  design = designs.make(config, setup.ds)
  # A design whose per-repetition set-up is missing would have nothing to index.
  if design.needs_rep_data and design.name not in setup.reps_host.designs:
    raise GtesimError(f"the {design.name} design needs its per-repetition set-up, but the "
                      f"Setup was built without it: build it with driver.setup.build(config, "
                      f"modes=(..., '{design.name}')).")
  sim = config.sim
  rule = exploration.make(config)
  spec = step_lib.SimSpec(
      setup.static, models_lib.label_models(config, setup.static.dims), sim.batch_size,
      sim.n_candidate, sim.updates_per_step, setup.n_train, design,
      environments.make(config, setup.static, setup.n_train), rule,
      staggered=sim.release == "staggered", arm_blocks=sim.arm_blocks)
  pre = config.pretrain
  return Simulation(spec, config.sim.validate_every, pre.batch_size, pre.patience,
                    pre.min_delta, vectorize_mode(config), designs.worlds_of(config, design, rule))
