"""Running a study (SPEC §6): one production model per repetition, then every job from it.

The label models are pretrained once per repetition (saved under `<out>/production/`); the
global truth (trained and frozen models), every design and every sweep point start from that
same state, so each estimate is paired with its own repetition's truth by construction. Every
job writes an ordinary run folder under `<out>/runs/<job>/` (result.json, Parquet tables,
figure); a finished job is reused when the study is run again, so an interrupted study
continues where it stopped.
"""

import json
import pathlib
import time

import pyarrow.parquet as pq

from gtesim import logs
from gtesim import writing
from gtesim.config import checks as config_checks
from gtesim.core import mapping
from gtesim.core import simulation
from gtesim.driver import checkpoints as ckpt_lib
from gtesim.driver import history as history_lib
from gtesim.driver import parallel
from gtesim.driver import results
from gtesim.driver import setup as setup_lib
from gtesim.driver import simulate
from gtesim.study import plan as plan_lib
from gtesim.study import figures
from gtesim.study import report
from gtesim.study import summary as summary_lib

log = logs.get_logger("study")


def _same_config(path: pathlib.Path, config) -> bool:
  return path.exists() and json.loads(path.read_text()) == json.loads(
      config.to_json_best_effort())


def _production(config, setup, out_dir: pathlib.Path):
  """The pretrained production state (restored when this study already made it)."""
  folder = out_dir / "production"
  sim = simulation.make_simulation(config, setup)
  fns = mapping.compile_simulation(sim, setup.mesh)
  ckpts = ckpt_lib.Checkpoints(folder / "checkpoint", max_to_keep=1)
  try:
    if _same_config(folder / "config.json", config) and ckpts.latest_step() is not None:
      template = fns.init(setup.env, setup.reps, setup.pretrain_rows)
      prod, _ = ckpts.restore(ckpts.latest_step(), template)
      log.info("production models restored from %s", folder)
      return prod, json.loads((folder / "pretrain.json").read_text())
    prod, pretrain_report = simulate.pretrain_production(config, setup, fns)
    ckpts.clear()  # Production models of another config: replaced, never restored again.
    ckpts.save(0, prod, {"rep_indices": setup.rep_indices})
  finally:
    ckpts.close()
  if parallel.is_primary():
    writing.write_json(folder / "pretrain.json", writing.jsonable(pretrain_report))
    writing.write_json(folder / "config.json", json.loads(config.to_json_best_effort()))
  return prod, pretrain_report


def _run_job(job: plan_lib.Job, setup, prod, pretrain_report, workdir: pathlib.Path):
  t0 = time.perf_counter()
  sim = simulation.make_simulation(job.config, setup)
  fns = mapping.compile_simulation(sim, setup.mesh)
  state = fns.start(setup.env, setup.reps, prod, simulate.point_inputs(job.config,
                                                                       job.worlds))
  history = simulate.start_history(setup, fns, state, job.worlds)
  _, history, timing = simulate.run_experiment(job.config, setup, fns, state, job.worlds,
                                               history, 0, desc=job.name)
  timing["wall_s"] = time.perf_counter() - t0
  if parallel.is_primary():
    writing.write_json(workdir / "config.json", json.loads(job.config.to_json_best_effort()))
    dataset_info = results.dataset_info(job.config, setup.ds.overview)
    results.write_run(job.config, dataset_info, pretrain_report, history, job.worlds,
                      setup.rep_indices, workdir, timing)
  return history, timing


def _load_job(job: plan_lib.Job, workdir: pathlib.Path):
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
  config_checks.check(config)
  jobs = plan_lib.plan(config)
  t0 = time.perf_counter()
  setup = setup_lib.build(jobs[0].config, modes=[j.config.mode for j in jobs])
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
  summary = summary_lib.summarize(config, jobs, histories, pretrain_report)
  summary["steps_per_epoch"] = setup.n_train // config.sim.batch_size
  summary["command"] = command
  cost["pretrain_and_jobs_s"] = cost["pretrain_s"] + sum(cost[j.name] for j in jobs)
  cost["this_invocation_s"] = time.perf_counter() - t0
  summary["cost"] = cost
  # Compact (~10^5 numbers), 7 significant digits: float32-level precision.
  writing.write_json(out_dir / "study.json", writing.jsonable(summary, digits=7), indent=None)
  figures.figures(config, summary, out_dir)  # NaN (not JSON null) where undefined.
  report.report(config, summary, out_dir)
  summary = writing.jsonable(summary)
  log.info("wrote %s (%.0f s in this invocation)", out_dir / "report.md",
           time.perf_counter() - t0)
  return summary
