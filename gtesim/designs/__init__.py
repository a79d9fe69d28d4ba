"""Experiment designs (SPEC §5): one module each, resolved by name here and nowhere else.

`mode` names the design: `global` (the GT and GC worlds of the true GTE) or an A/B design.
A design is a choice of pieces (designs/pieces.py: who is treated, what each arm may be shown,
what each arm learns from, which steps count, the variance's unit). Adding one is a module
with a Design subclass that picks its pieces, one line in DESIGNS and its config keys
(docs/extending.md).
"""

from gtesim.core import exploration as exploration_lib
from gtesim.designs import base
from gtesim.designs import cluster
from gtesim.designs import codiverted
from gtesim.designs import pooling
from gtesim.designs import snapshot
from gtesim.designs import splitting
from gtesim.designs import switchback
from gtesim.designs import weighting
from gtesim.designs.worlds import SweepPoint, Worlds
from gtesim.registry import Registry

DESIGNS = Registry("mode", "mode")
DESIGNS.register("global", base.GlobalMode)
DESIGNS.register("pooling", pooling.Pooling)
DESIGNS.register("splitting", splitting.Splitting)
DESIGNS.register("snapshot", snapshot.Snapshot)
DESIGNS.register("weighting", weighting.Weighting)
DESIGNS.register("codiverted", codiverted.Codiverted)
DESIGNS.register("cluster", cluster.Cluster)
DESIGNS.register("switchback", switchback.Switchback)

MODES = DESIGNS.names()
AB_DESIGNS = tuple(n for n, d in DESIGNS.items() if d.arms == 2)


def make(config, ds=None) -> base.Design:
  """The design of `config.mode` (`ds`: the dataset, for a size the compiled code needs)."""
  return DESIGNS.get(config.mode).from_config(config.mode, config, ds)


def data_pieces(configs, ds) -> dict:
  """{RepData.designs key: the piece that builds it} of the designs of `configs` (each its
  config.mode under its own keys; a key shared by several is built once)."""
  out = {}
  for config in configs:
    for data, piece in make(config, ds).data_pieces.items():
      out.setdefault(data, piece)
  return out


def check_config(config) -> None:
  """Every design's checks of its own config keys (the run's design also its mode checks)."""
  for name, design in DESIGNS.items():
    design.check_config(config, active=name == config.mode)


def sweep_points(config) -> tuple:
  """The run's sweep points (SweepPoint) from `experiment.p_treatment`, `sim.epsilon` /
  `sim.temperature` and the `sweep` section: the listed `sweep.points`, else the product of
  `sweep.p_treatment` and `sweep.alpha_gap`; each crossed with `sweep.epsilon` x
  `sweep.temperature`."""
  sweep = config.sweep
  if sweep.points:
    pairs = tuple((float(p), float(g)) for p, g in sweep.points)
  else:
    ps = tuple(sweep.p_treatment) or (config.experiment.p_treatment,)
    gaps = tuple(sweep.alpha_gap) or (1.0,)
    pairs = tuple((float(p), float(g)) for p in ps for g in gaps)
  epsilons = tuple(sweep.epsilon) or (config.sim.epsilon,)
  temperatures = tuple(sweep.temperature) or (config.sim.temperature,)
  return tuple(SweepPoint(p, g, float(e), float(tau)) for p, g in pairs
               for e in epsilons for tau in temperatures)


def worlds_of(config, design=None, exploration=None) -> Worlds:
  """The run's worlds: its design (made here when not given: without the dataset, enough for
  bookkeeping; a run's own is core.simulation's) at every sweep point, and its exploration
  rule."""
  return Worlds(design or make(config), sweep_points(config),
                exploration or exploration_lib.make(config))
