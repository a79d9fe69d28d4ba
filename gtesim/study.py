"""A study (SPEC §6): one production model per repetition, then every run from it.

The label models are pretrained once per repetition (saved under `<out>/production/`); the
global truth (trained and frozen models), every design and every sweep point start from that
same state, so each estimate is paired with its own repetition's truth by construction. A
design's sweep points (p at alpha gap 1, then alpha gaps at the main p; gap 0 is the A/A)
are one mapped axis of one compiled call. Every job writes an ordinary run folder under
`<out>/runs/<job>/` (result.json, Parquet tables, figure); a finished job is reused when the
study is run again, so an interrupted study continues where it stopped.
"""

import dataclasses
import json
import pathlib
import time

import pyarrow.parquet as pq

from gtesim import checkpoints as ckpt_lib
from gtesim import config_check
from gtesim import core
from gtesim import designs
from gtesim import history as history_lib
from gtesim import inputs
from gtesim import io
from gtesim import logs
from gtesim import outputs
from gtesim import parallel
from gtesim import simulation
from gtesim import study_report
from gtesim.errors import InputError

log = logs.get_logger("study")


@dataclasses.dataclass(frozen=True)
class Job:
  """One compiled call of the study: a mode, its points, its run config."""
  name: str
  config: object  # The run config (no `study` section).
  worlds: designs.Worlds


def _job_config(config, mode, points, frozen=False, weight_features=None):
  c = config.copy_and_resolve_references()
  with c.unlocked():
    del c["study"]
  c.mode = mode
  c.sweep.points = tuple(points)
  c.sweep.p_treatment = ()
  c.sweep.alpha_gap = ()
  c.sim.train_models = not frozen
  if weight_features is not None:
    c.experiment.weight_features = weight_features
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


def plan(config) -> list:
  """Every job of the study, in run order."""
  study = config.study
  for design in study.designs:
    if design not in designs.AB_DESIGNS:
      raise InputError(f"config key study.designs holds '{design}'; use "
                       f"{', '.join(designs.AB_DESIGNS)}.")
  if not study.p_values or not study.alpha_gaps:
    raise InputError("config keys study.p_values and study.alpha_gaps must not be empty.")
  specs = [("truth", "global", truth_points(config), {})]
  if study.frozen_truth:
    specs.append(("truth-frozen", "global", truth_points(config), {"frozen": True}))
  for design in study.designs:
    specs.append((design, design, design_points(config), {}))
  if study.weighting_video and "weighting" in study.designs:
    specs.append(("weighting-video", "weighting", design_points(config),
                  {"weight_features": "video"}))
  jobs = []
  for name, mode, points, extra in specs:
    c = _job_config(config, mode, points, **extra)
    jobs.append(Job(name, c, designs.worlds_of(c)))
  return jobs


def _same_config(path: pathlib.Path, config) -> bool:
  return path.exists() and json.loads(path.read_text()) == json.loads(
      config.to_json_best_effort())


def _production(config, setup, out_dir: pathlib.Path):
  """The pretrained production state (restored when this study already made it)."""
  folder = out_dir / "production"
  sim = core.make_simulation(config, setup)
  fns = core.compile_simulation(sim, setup.mesh)
  ckpts = ckpt_lib.Checkpoints(folder / "checkpoint", max_to_keep=1)
  try:
    if _same_config(folder / "config.json", config) and ckpts.latest_step() is not None:
      template = fns.init(setup.env, setup.reps, setup.pretrain_rows)
      prod, _ = ckpts.restore(ckpts.latest_step(), template)
      log.info("production models restored from %s", folder)
      return prod, json.loads((folder / "pretrain.json").read_text())
    prod, report = simulation.pretrain_production(config, setup, fns)
    ckpts.clear()  # Production models of another config: replaced, never restored again.
    ckpts.save(0, prod, {"rep_indices": setup.rep_indices})
  finally:
    ckpts.close()
  if parallel.is_primary():
    io.write_json(folder / "pretrain.json", outputs.jsonable(report))
    io.write_json(folder / "config.json", json.loads(config.to_json_best_effort()))
  return prod, report


def _run_job(job: Job, setup, prod, pretrain_report, workdir: pathlib.Path):
  t0 = time.perf_counter()
  sim = core.make_simulation(job.config, setup)
  fns = core.compile_simulation(sim, setup.mesh)
  state = fns.start(setup.env, setup.reps, prod, simulation.point_inputs(job.config,
                                                                         job.worlds))
  history = simulation.start_history(setup, fns, state, job.worlds)
  _, history, timing = simulation.run_experiment(job.config, setup, fns, state, job.worlds,
                                                 history, 0, desc=job.name)
  timing["wall_s"] = time.perf_counter() - t0
  if parallel.is_primary():
    io.write_json(workdir / "config.json", json.loads(job.config.to_json_best_effort()))
    dataset_info = outputs.dataset_info(job.config, setup.ds.overview)
    outputs.write_run(job.config, dataset_info, pretrain_report, history, job.worlds,
                      setup.rep_indices, workdir, timing)
  return history, timing


def _load_job(job: Job, workdir: pathlib.Path):
  labels = list(job.config.labels)
  history = history_lib.from_tables(
      pq.read_table(workdir / "steps.parquet").to_pydict(),
      pq.read_table(workdir / "metrics.parquet").to_pydict(), job.worlds, labels,
      history_lib.model_metric_names(job.config), job.config.repetitions)
  return history, json.loads((workdir / "result.json").read_text())["timing"]


def run(config, out_dir, command: str = "") -> dict:
  """Runs (or reuses) every job of the study; writes study.json, report.md and figures.

  `command` is the command line the report names (how to regenerate it)."""
  out_dir = pathlib.Path(out_dir)
  config_check.check(config)
  jobs = plan(config)
  t0 = time.perf_counter()
  setup = inputs.build(jobs[0].config, modes=[j.config.mode for j in jobs])
  setup_s = time.perf_counter() - t0
  prod, pretrain_report = _production(jobs[0].config, setup, out_dir)
  histories, cost = {}, {"setup_s": setup_s, "pretrain_s": pretrain_report["wall_s"]}
  for i, job in enumerate(jobs):
    workdir = out_dir / "runs" / job.name
    if _same_config(workdir / "config.json", job.config) and all(
        (workdir / f).exists() for f in ("result.json", "steps.parquet", "metrics.parquet")):
      log.info("job %d/%d %s: already finished, reusing", i + 1, len(jobs), job.name)
      histories[job.name], timing = _load_job(job, workdir)
    else:
      log.info("job %d/%d %s: %s, %d point(s) x %d repetitions", i + 1, len(jobs), job.name,
               job.config.mode, len(job.worlds.points), job.config.repetitions)
      histories[job.name], timing = _run_job(job, setup, prod, pretrain_report, workdir)
    cost[job.name] = timing["wall_s"]
  if not parallel.is_primary():
    return None
  summary = study_report.summarize(config, jobs, histories, pretrain_report)
  summary["steps_per_epoch"] = setup.n_train // config.sim.batch_size
  summary["command"] = command
  cost["pretrain_and_jobs_s"] = cost["pretrain_s"] + sum(cost[j.name] for j in jobs)
  cost["this_invocation_s"] = time.perf_counter() - t0
  summary["cost"] = cost
  # Compact (~10^5 numbers), 7 significant digits: float32-level precision.
  io.write_json(out_dir / "study.json", outputs.jsonable(summary, digits=7), indent=None)
  study_report.figures(config, summary, out_dir)  # NaN (not JSON null) where undefined.
  study_report.report(config, summary, out_dir)
  summary = outputs.jsonable(summary)
  log.info("wrote %s (%.0f s in this invocation)", out_dir / "report.md",
           time.perf_counter() - t0)
  return summary
