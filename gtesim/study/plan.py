"""A study's jobs (SPEC §6): the global truth, every design and its sweep points.

A design's sweep points (p at alpha gap 1, then alpha gaps at the main p; gap 0 is the A/A)
are one mapped axis of one compiled call; the truth runs at every nonzero gap, with trained
and (optionally) frozen models, as K = study.truth_replicates jobs of independent draws
("truth-r1" ... "truth-rK", sim.replicate = k), whose mean is each repetition's truth.
"""

import dataclasses

from gtesim import designs
from gtesim.core import exploration
from gtesim.errors import InputError

TRUTH_MODE = "global"  # The design whose worlds give the true GTE.


@dataclasses.dataclass(frozen=True)
class Job:
  """One compiled call of the study: a mode, its points, its run config."""
  name: str
  config: object  # The run config (no `study` section).
  worlds: designs.Worlds


def _job_config(config, mode, points, frozen=False, overrides=None):
  c = config.copy_and_resolve_references()
  with c.unlocked():
    del c["study"]
  c.mode = mode
  c.sweep.points = tuple(points)
  c.sweep.p_treatment = ()
  c.sweep.alpha_gap = ()
  c.sim.train_models = not frozen
  for key, value in (overrides or {}).items():
    node = c
    *path, last = key.split(".")
    for part in path:
      node = node[part]
    node[last] = value
  return c


def design_points(config) -> list:
  """The A/B points: the main one first, the other p at gap 1, the other gaps at the main p."""
  study, p_main = config.study, config.experiment.p_treatment
  return ([(p_main, 1.0)] + [(p, 1.0) for p in study.p_values if p != p_main] +
          [(p_main, g) for g in study.alpha_gaps if g != 1.0])


def truth_points(config) -> list:
  """Global truth at every nonzero gap (at gap 0 GT is GC: the truth is exactly 0)."""
  p_main = config.experiment.p_treatment
  return [(p_main, 1.0)] + [(p_main, g) for g in config.study.alpha_gaps if g not in (0.0, 1.0)]


TRUTH = "truth"
TRUTH_FROZEN = "truth-frozen"
TRUTH_EXPECTED = "truth-expected"


def exploration_truth_name(epsilon) -> str:
  return f"truth-eps={epsilon:g}"


def replicate_names(config, base: str) -> list:
  """The job names of one truth's K replicates."""
  return [f"{base}-r{k}" for k in range(1, config.study.truth_replicates + 1)]


def plan(config) -> list:
  """Every job of the study, in run order."""
  study = config.study
  for design in study.designs:
    if design not in designs.AB_DESIGNS:
      raise InputError(f"config key study.designs holds '{design}'; use "
                       f"{', '.join(designs.AB_DESIGNS)}.")
  if not study.p_values or not study.alpha_gaps:
    raise InputError("config keys study.p_values and study.alpha_gaps must not be empty.")
  if study.epsilons:
    if "epsilon" not in exploration.make(config).traced:
      raise InputError("config key study.epsilons needs sim.exploration = 'epsilon' (the "
                       "epsilon of every other job is sim.epsilon).")
    if config.sim.epsilon in study.epsilons:
      raise InputError(f"config key study.epsilons holds sim.epsilon = {config.sim.epsilon:g}, "
                       "which every job already runs at.")
    for design in study.exploration_designs:
      if design not in study.designs:
        raise InputError(f"config key study.exploration_designs holds '{design}', which is "
                         "not in study.designs.")
  if study.truth_replicates < 1:
    raise InputError("config key study.truth_replicates must be at least 1.")
  if study.bootstrap < 0:
    raise InputError("config key study.bootstrap must be >= 0 (0: no bootstrap intervals).")
  if study.expected_truth and config.sim.outcome != "sampled":
    raise InputError("config key study.expected_truth needs sim.outcome = 'sampled' (the "
                     "expected-outcome truth is the other one).")
  truths = [(TRUTH, truth_points(config), {})]
  if study.frozen_truth:
    truths.append((TRUTH_FROZEN, truth_points(config), {"frozen": True}))
  if study.expected_truth:
    truths.append((TRUTH_EXPECTED, truth_points(config)[:1],
                   {"overrides": {"sim.outcome": "expected"}}))
  for e in study.epsilons:  # The truth at each epsilon (global mode's GC is per epsilon).
    truths.append((exploration_truth_name(e), truth_points(config)[:1],
                   {"overrides": {"sim.epsilon": e}}))
  specs = []
  for base, points, extra in truths:
    for k, name in enumerate(replicate_names(config, base), 1):
      specs.append((name, TRUTH_MODE, points,
                    {**extra, "overrides": {**extra.get("overrides", {}), "sim.replicate": k}}))
  for design in study.designs:
    extra = ({"overrides": {"sweep.epsilon": (config.sim.epsilon, *study.epsilons)}}
             if study.epsilons and design in study.exploration_designs else {})
    specs.append((design, design, design_points(config), extra))
  for design in study.designs:  # A design's extra jobs (weighting with G on video features).
    for name, overrides in designs.DESIGNS.get(design).study_extra_jobs(config):
      specs.append((name, design, design_points(config), {"overrides": overrides}))
  jobs = []
  for name, mode, points, extra in specs:
    c = _job_config(config, mode, points, **extra)
    jobs.append(Job(name, c, designs.worlds_of(c)))
  return jobs


def production_config(jobs) -> object:
  """The config the production models (and the study's set-up) are made with: the first
  job's, at replicate 0 (the replicates share the production models)."""
  c = jobs[0].config.copy_and_resolve_references()
  c.sim.replicate = 0
  return c
