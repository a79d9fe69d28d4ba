"""A study's jobs (SPEC §6): the global truth, every design and its sweep points.

A design's sweep points (p at alpha gap 1, then alpha gaps at the main p; gap 0 is the A/A)
are one mapped axis of one compiled call; the truth runs at every nonzero gap, with trained
and (optionally) frozen models, as K = study.truth_replicates jobs of independent draws
("truth-r1" ... "truth-rK", sim.replicate = k), whose mean is each repetition's truth.
"""

import dataclasses

from gtesim import designs
from gtesim import models
from gtesim.core import exploration
from gtesim.errors import InputError
from gtesim.stats import estimators

TRUTH_MODE = "global"  # The design whose worlds give the true GTE.


@dataclasses.dataclass(frozen=True)
class Job:
  """One compiled call of the study: a mode, its points, its run config."""
  name: str
  config: object  # The run config (no `study` section).
  worlds: designs.Worlds
  state: str = ""  # Its production state (study.production_states; "" the main one).


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


def split_sweep(config, points, truth=False) -> tuple:
  """(points on every repetition, points on study.sweep_repetitions) of a job's points: with
  sweep_repetitions the main point (and, for a design, the A/A) stay on every repetition."""
  if not config.study.sweep_repetitions:
    return list(points), []
  p_main = config.experiment.p_treatment
  keep = {(p_main, 1.0)} | (set() if truth else {(p_main, 0.0)})
  return [q for q in points if q in keep], [q for q in points if q not in keep]


SWEEP_SUFFIX = "-sweep"


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
  if 0.0 in study.alpha_gaps and models.n_rankers(config) == 2:
    raise InputError(
        "config key study.alpha_gaps holds 0, the A/A (truth exactly 0), but the arms rank "
        f"with different models ({', '.join(models.arm_differences(config))}), so gap 0 is "
        "no A/A: drop 0 from study.alpha_gaps.")
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
  if study.sweep_repetitions and not 2 <= study.sweep_repetitions <= config.repetitions:
    raise InputError(f"config key study.sweep_repetitions ({study.sweep_repetitions}) must be "
                     f"0 or in [2, repetitions = {config.repetitions}].")
  specs = []
  sweep_reps = {"repetitions": study.sweep_repetitions}
  for base, points, extra in truths:
    main, sweep = split_sweep(config, points, truth=True)
    for part, part_points, more in ((base, main, {}), (base + SWEEP_SUFFIX, sweep, sweep_reps)):
      if not part_points:
        continue
      for k, name in enumerate(replicate_names(config, part), 1):
        specs.append((name, TRUTH_MODE, part_points,
                      {**extra, "overrides": {**extra.get("overrides", {}), **more,
                                              "sim.replicate": k}}))
  def add_design(name, design, extra, only_main=False):
    main, sweep = split_sweep(config, design_points(config))
    if only_main:
      p_main = config.experiment.p_treatment
      main = [q for q in design_points(config) if q in ((p_main, 1.0), (p_main, 0.0))]
      sweep = []
    specs.append((name, design, main, extra))
    if sweep:
      specs.append((name + SWEEP_SUFFIX, design, sweep, {
          **extra, "overrides": {**extra.get("overrides", {}),
                                 "repetitions": study.sweep_repetitions}}))

  for design in study.designs:
    extra = ({"overrides": {"sweep.epsilon": (config.sim.epsilon, *study.epsilons)}}
             if study.epsilons and design in study.exploration_designs else {})
    add_design(design, design, extra)
  for design in study.designs:  # A design's extra jobs (weighting with G on video features).
    for name, overrides, *where in designs.DESIGNS.get(design).study_extra_jobs(config):
      add_design(name, design, {"overrides": overrides}, only_main=where == ["main"])
  if study.state_repetitions and not 2 <= study.state_repetitions <= config.repetitions:
    raise InputError(f"config key study.state_repetitions ({study.state_repetitions}) must be "
                     f"0 or in [2, repetitions = {config.repetitions}].")
  specs = [(*spec, "") for spec in specs] + _state_specs(config)
  jobs = []
  for name, mode, points, extra, state in specs:
    c = _job_config(config, mode, points, **extra)
    jobs.append(Job(name, c, designs.worlds_of(c), state))
  _check_estimators(config, jobs)
  return jobs


def _check_estimators(config, jobs) -> None:
  """Refuses an estimator of estimator.names that no design job can give (each job is scored
  by those that apply to it: estimators.applicable)."""
  ab = [j for j in jobs if j.worlds.design.arms == 2 and not j.state]
  for name in config.estimator.names:
    reasons = {}
    for job in ab:
      _, why = estimators.applicable(job.config, job.worlds.design, job.worlds.points)
      if name not in why:
        break
      reasons[job.name] = why[name]
    else:
      first = next(iter(reasons.items()), ("", "no A/B design job"))
      raise InputError(f"config key estimator.names: '{name}' applies to none of the study's "
                       f"design jobs; e.g. {first[0]}: {first[1]}")


STATE_SEP = "@"


def production_folder(state: str) -> str:
  """A production state's folder under the study's: production/, production-<state>/."""
  return "production" + (f"-{state}" if state else "")


def _state_specs(config) -> list:
  """The mechanism sweep over the production model's state: per study.production_states
  entry (name, pretraining rows, most pretraining epochs; 0 keeps the main one's), the truth
  (and frozen truth) and study.state_designs at the main point, on study.state_repetitions
  repetitions (0: all)."""
  study = config.study
  specs = []
  names = [s[0] for s in study.production_states]
  if len(set(names)) != len(names):
    raise InputError("config key study.production_states repeats a name.")
  for state in study.production_states:
    if len(state) != 3 or not isinstance(state[0], str) or not state[0].isidentifier():
      raise InputError(f"config key study.production_states holds {state!r}; each entry is "
                       "(name, pretraining rows, most pretraining epochs or 0).")
    name, rows, epochs = state
    overrides = {"pretrain.n_interactions": int(rows)}
    if epochs:
      overrides["pretrain.max_epochs"] = int(epochs)
    if study.state_repetitions:
      overrides["repetitions"] = study.state_repetitions
    main = [(config.experiment.p_treatment, 1.0)]
    truths = [(TRUTH, {})] + ([(TRUTH_FROZEN, {"frozen": True})] if study.frozen_truth else [])
    for base, extra in truths:
      for k, job in enumerate(replicate_names(config, f"{base}{STATE_SEP}{name}"), 1):
        specs.append((job, TRUTH_MODE, main,
                      {**extra, "overrides": {**overrides, "sim.replicate": k}}, name))
    for design in study.state_designs:
      if design not in study.designs:
        raise InputError(f"config key study.state_designs holds '{design}', which is not in "
                         "study.designs.")
      specs.append((f"{design}{STATE_SEP}{name}", design, main, {"overrides": overrides}, name))
  return specs


def production_config(jobs) -> object:
  """The config the production models (and the study's set-up) are made with: the first
  job's, at replicate 0 (the replicates share the production models)."""
  c = jobs[0].config.copy_and_resolve_references()
  c.sim.replicate = 0
  return c
