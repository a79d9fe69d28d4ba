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
so a sweep is one more mapped axis of the same compiled function.

When the arms rank with different models (`arms.<arm>.labels`, models.rankers), the worlds
are mapped in groups of equal rankers (`WorldGroup`: global mode's GT worlds run the
treatment's ranker, its GC world the control's); the worlds' state is then a tuple of the
groups' stacked worlds, and every output is concatenated in world order. With one group (one
ranker, or any A/B design) the state is that group's World, as it always was.
`mapping.compile_simulation` maps these over the repetition axis and jit-compiles them.
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
class WorldGroup:
  """Consecutive worlds [start, stop) whose arms rank with the same models (`spec`)."""
  start: int
  stop: int
  spec: step_lib.SimSpec


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
  groups: tuple = ()  # WorldGroup, ...: () = one group of every world with `spec`.

  @property
  def world_groups(self) -> tuple:
    """The WorldGroups (one of every world when the arms share their ranker)."""
    return self.groups or (WorldGroup(0, self.worlds.n_worlds, self.spec),)

  def _by_group(self, fn, points, worlds=None):
    """fn(spec, points, worlds) of every group, on its slice of the points and its own
    worlds (the worlds' state: one group's World, or a tuple of each group's); returns the
    groups' outputs."""
    groups = self.world_groups
    if len(groups) == 1:
      return [fn(groups[0].spec, points, worlds)]
    return [fn(g.spec, jax.tree.map(lambda x, g=g: x[g.start:g.stop], points),
               None if worlds is None else worlds[i]) for i, g in enumerate(groups)]

  @staticmethod
  def _joined(outputs):
    """The groups' outputs concatenated along the world axis (one group: its own)."""
    if len(outputs) == 1:
      return outputs[0]
    return jax.tree.map(lambda *xs: jnp.concatenate(xs), *outputs)

  def init(self, env, rep, rows) -> pretrain.Production:
    return pretrain.init(self.spec, env, rep, rows)

  def pretrain_epoch(self, env, rep, rows, prod, index):
    return pretrain.epoch(self.spec, self.pretrain_batch, self.patience, self.min_delta, env,
                          rep, rows, prod, index, skip_stopped=self.vectorize == "map")

  def start(self, env, rep, prod: pretrain.Production, points):
    """Worlds [W] whose every arm starts from the production models and their optimizer
    state (a production system keeps training, it does not reset Adam), with the design's
    and the environment's fresh state."""
    n_labels = len(self.spec.models)

    def group(spec, pts, _):
      arms = [prod.ranker(r, n_labels) for r in spec.arm_rankers]

      def one(point):
        return World(tuple(a[0] for a in arms), tuple(a[1] for a in arms),
                     spec.environment.init_memory(spec, env, rep, point),
                     step_lib.design_state(spec, rep, point))

      return map_axis(one, self.vectorize)(pts)

    out = self._by_group(group, points)
    return out[0] if len(out) == 1 else tuple(out)

  def chunk(self, env, rep, points, worlds, t0, n_phases: int = len(step_lib.PHASES)):
    """`chunk_len` scanned steps of every world (bench.py: only their first n_phases)."""
    def group(spec, pts, wlds):
      def one(point, world):
        if n_phases == len(step_lib.PHASES):
          fn = lambda w, t: step_lib.step(spec, env, rep, point, w, t)
        else:
          fn = lambda w, t: step_lib.step_prefix(spec, env, rep, point, w, t, n_phases)
        return lax.scan(fn, world, t0 + jnp.arange(self.chunk_len))

      return map_axis(one, self.vectorize)(pts, wlds)

    out = self._by_group(group, points, worlds)
    if len(out) == 1:
      return out[0]
    return tuple(o[0] for o in out), self._joined([o[1] for o in out])

  def evaluate(self, env, rep, worlds) -> dict:
    def group(spec, _, wlds):
      def one(world):
        per_arm = [{split: evaluate_models(spec, env, rep, p, rows, spec.arm_models(a))
                    for split, rows in (("val", rep.val_rows), ("train", rep.train_rows))}
                   for a, p in enumerate(world.params)]
        out = jax.tree.map(lambda *xs: jnp.stack(xs), *per_arm)
        out.update(spec.design.unit.evaluate(spec, world.design.unit, rep))
        return out

      return map_axis(one, self.vectorize)(wlds)

    return self._joined(self._by_group(group, None, worlds))


def make_simulation(config, setup) -> Simulation:
  """The Simulation of a config over a built Setup (driver.setup.build)."""
  design = designs.make(config, setup.ds)
  # A design whose per-repetition set-up is missing would have nothing to index.
  missing = set(design.data_pieces) - set(setup.reps_host.designs)
  if missing:
    raise GtesimError(f"the {design.name} design needs its per-repetition set-up "
                      f"({', '.join(sorted(missing))}), but the Setup was built without it: "
                      "build it with driver.setup.build(..., configs=[..., this config]).")
  sim = config.sim
  rule = exploration.make(config)
  rankers, arm_ranker = models_lib.rankers(config, setup.static.dims)
  worlds = designs.worlds_of(config, design, rule)
  per_world = design.layout.world_rankers(len(worlds.points), arm_ranker)
  spec = step_lib.SimSpec(
      setup.static, rankers, sim.batch_size, sim.n_candidate, sim.updates_per_step,
      setup.n_train, design, environments.make(config, setup.static, setup.n_train), rule,
      staggered=sim.release == "staggered", arm_blocks=sim.arm_blocks,
      arm_rankers=per_world[0], ranker_prefixes=models_lib.ranker_prefixes(len(rankers)))
  groups = []
  for w, arm_rankers in enumerate(per_world):
    if groups and groups[-1].spec.arm_rankers == arm_rankers:
      groups[-1] = dataclasses.replace(groups[-1], stop=w + 1)
    else:
      groups.append(WorldGroup(w, w + 1, dataclasses.replace(spec, arm_rankers=arm_rankers)))
  pre = config.pretrain
  return Simulation(spec, config.sim.validate_every, pre.batch_size, pre.patience,
                    pre.min_delta, vectorize_mode(config), worlds,
                    tuple(groups) if len(groups) > 1 else ())
