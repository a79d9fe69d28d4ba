"""Running a study (SPEC §6): one production model per repetition, then every job from it.

The label models are pretrained once per repetition (saved under `<out>/production/`); the
global truth (trained and frozen models), every design and every sweep point start from that
same state, so each estimate is paired with its own repetition's truth by construction. Every
job writes an ordinary run folder under `<out>/runs/<job>/` (result.json, Parquet tables,
figure) and checkpoints every `checkpoint_every` steps; a finished job is reused and an
unfinished one resumed from its checkpoint when the study is run again, so an interrupted
study continues where it stopped.

A study runs in one process (stage "all") or as a job graph (scripts/slurm/study.sh): stage
"pretrain" (the production models), then stage "job" once per job (in parallel, each on its
own device), then stage "report" (study.json, report.md, figures from the jobs' folders),
which equals the one-process study. The `<out>/.lock` file keeps two studies apart: stages
"all", "pretrain" and "report" hold it exclusively, the jobs of a graph share it.
"""

import contextlib
import json
import pathlib
import shutil
import time

import jax
import pyarrow.parquet as pq

from gtesim import logs
from gtesim import provenance
from gtesim import writing
from gtesim.config import checks as config_checks
from gtesim.core import mapping
from gtesim.core import simulation
from gtesim.driver import checkpoints as ckpt_lib
from gtesim.driver import history as history_lib
from gtesim.driver import parallel
from gtesim.driver import results
from gtesim.driver import scalars as scalars_lib
from gtesim.driver import setup as setup_lib
from gtesim.driver import simulate
from gtesim.driver import workdir as workdir_lib
from gtesim.errors import InputError
from gtesim.study import compact
from gtesim.study import figures
from gtesim.study import plan as plan_lib
from gtesim.study import report
from gtesim.study import summary as summary_lib
from gtesim.study import verdict as verdict_lib

log = logs.get_logger("study")


STAGES = ("all", "pretrain", "job", "report")
_JOB_FILES = ("result.json", "steps.parquet", "metrics.parquet")


def _same_config(path: pathlib.Path, config) -> bool:
  return path.exists() and json.loads(path.read_text()) == json.loads(
      config.to_json_best_effort())


def _production(config, setup, folder: pathlib.Path, stop=None, restore_only=False):
  """The pretrained production state in `folder` (restored when this study already made
  it)."""
  sim = simulation.make_simulation(config, setup)
  fns = mapping.compile_simulation(sim, setup.mesh)
  ckpts = ckpt_lib.Checkpoints(folder / "checkpoint", max_to_keep=1,
                               primary=parallel.is_primary())
  try:
    if _same_config(folder / "config.json", config) and ckpts.latest_step() is not None:
      template = fns.init(setup.env, setup.reps, setup.pretrain_rows)
      prod, _ = ckpts.restore(ckpts.latest_step(), template)
      log.info("production models restored from %s", folder)
      return prod, json.loads((folder / "pretrain.json").read_text())
    if restore_only:
      raise InputError(f"{folder} holds no production models of this config: run the study's "
                       "pretrain stage first (scripts/study.py --stage=pretrain, with the same "
                       "config and overrides).")
    if (folder / "config.json").exists():
      log.info("production models in %s are of another config: pretraining again", folder)
      if parallel.is_primary():
        shutil.rmtree(folder / scalars_lib.FOLDER, ignore_errors=True)  # Their curves.
    board = scalars_lib.Scalars(folder / scalars_lib.FOLDER)
    try:
      prod, pretrain_report = simulate.pretrain_production(config, setup, fns, stop, board)
    finally:
      board.close()
    ckpts.clear()  # Production models of another config: replaced, never restored again.
    ckpts.save(0, prod, {"rep_indices": setup.rep_indices})
  finally:
    ckpts.close()
  if parallel.is_primary():
    writing.write_json(folder / "pretrain.json", writing.jsonable(pretrain_report))
    writing.write_json(folder / "config.json", json.loads(config.to_json_best_effort()))
  return prod, pretrain_report


def _finished(job: plan_lib.Job, workdir: pathlib.Path) -> bool:
  return _same_config(workdir / "config.json", job.config) and all(
      (workdir / f).exists() for f in _JOB_FILES)


def _run_job(job: plan_lib.Job, setup, prod, pretrain_report, workdir: pathlib.Path, stop):
  """Runs one job into its folder, resuming from its checkpoints when they are of this
  job's config (a folder of another config is cleared first)."""
  t0 = time.perf_counter()
  n = job.config.repetitions
  if n < len(setup.rep_indices):  # A sweep job: the study's first n repetitions.
    setup = setup_lib.first_reps(setup, n)
    prod = parallel.shard_reps(jax.tree.map(lambda x: x[:n], parallel.to_host(prod)),
                               setup.mesh)
  setup = setup_lib.for_replicate(setup, job.config, job.config.sim.replicate)
  sim = simulation.make_simulation(job.config, setup)
  fns = mapping.compile_simulation(sim, setup.mesh)
  same = _same_config(workdir / "config.json", job.config)
  if not same and parallel.is_primary():
    workdir_lib.prepare(workdir, resume=False, overwrite=True)  # Another config's files.
    writing.write_json(workdir / "config.json", json.loads(job.config.to_json_best_effort()))
  history, timing = simulate.experiment(job.config, setup, fns, sim.worlds, workdir,
                                        lambda board: prod, same, stop, desc=job.name)
  timing["wall_s"] = time.perf_counter() - t0
  if parallel.is_primary():
    dataset_info = results.dataset_info(job.config, setup.ds.overview)
    results.write_run(job.config, dataset_info, pretrain_report, history, sim.worlds,
                      setup.rep_indices, workdir, timing)
  return history, timing


def _load_job(job: plan_lib.Job, workdir: pathlib.Path):
  labels = list(job.config.labels)
  history = history_lib.from_tables(
      pq.read_table(workdir / "steps.parquet").to_pydict(),
      pq.read_table(workdir / "metrics.parquet").to_pydict(), job.worlds, labels,
      history_lib.model_metric_names(job.config), job.config.repetitions)
  return history, json.loads((workdir / "result.json").read_text())["timing"]


def job_names(config) -> list:
  """The study's jobs in run order (stage "job" takes one of them by name or index)."""
  config_checks.check(config)
  return [j.name for j in plan_lib.plan(config)]


def _pick(jobs, job):
  names = [j.name for j in jobs]
  if isinstance(job, int) or (isinstance(job, str) and job.isdigit()):
    if not 0 <= int(job) < len(jobs):
      raise InputError(f"--job {job}: the study has {len(jobs)} jobs (0 to {len(jobs) - 1}).")
    return jobs[int(job)]
  if job not in names:
    raise InputError(f"--job {job!r} is not a job of this study; its jobs: {', '.join(names)}.")
  return jobs[names.index(job)]


def run(config, out_dir, command: str = "", stage: str = "all", job=None,
        stop=None) -> dict:
  """Runs a stage of the study into `out_dir` (see the module docstring); stages "all" and
  "report" write study.json, report.md and figures and return the summary.

  `command` is the command line the report names (how to regenerate it); `job` (a name or
  an index into job_names) is stage "job"'s; `stop` is a stopping.StopRequests."""
  if stage not in STAGES:
    raise InputError(f"--stage {stage!r}: use one of {', '.join(STAGES)}.")
  if (stage == "job") != (job is not None):
    raise InputError("--job names the job of stage 'job' (and only of that stage).")
  out_dir = pathlib.Path(out_dir)
  config_checks.check(config)
  jobs = plan_lib.plan(config)
  todo = [_pick(jobs, job)] if stage == "job" else jobs
  workdir_lib.make(out_dir)
  holder = f"study stage {stage}" + (f" {todo[0].name}" if stage == "job" else "")
  with contextlib.ExitStack() as held:
    if parallel.is_primary():
      held.enter_context(workdir_lib.lock(out_dir, shared=stage == "job", holder=holder,
                                          what="study", option="--out"))
    if stage == "report":
      missing = [j.name for j in jobs if not _finished(j, out_dir / "runs" / j.name)]
      if missing:
        raise InputError(f"{out_dir}: the report needs every job finished; not finished: "
                         f"{', '.join(missing)} (run stage 'job' for them, or stage 'all').")
    return _run_stage(config, out_dir, command, stage, jobs, todo, stop)


def _state_production(out_dir, state_jobs, all_jobs, stage, stop):
  """(setup, production models, pretraining report, setup seconds) of one production state's
  jobs (None for the models in stage "report", which only reads)."""
  t0 = time.perf_counter()
  base = plan_lib.production_config(state_jobs)
  setup = setup_lib.build(base, configs=[j.config for j in all_jobs])
  setup_s = time.perf_counter() - t0
  folder = out_dir / plan_lib.production_folder(state_jobs[0].state)
  if stage == "report":
    if not _same_config(folder / "config.json", base):
      raise InputError(f"{folder} holds no production models of this config.")
    return setup, None, json.loads((folder / "pretrain.json").read_text()), setup_s
  prod, pretrain_report = _production(base, setup, folder, stop, restore_only=stage == "job")
  return setup, prod, pretrain_report, setup_s


def _run_stage(config, out_dir, command, stage, jobs, todo, stop):
  t0 = time.perf_counter()
  states = {}  # Production state -> its jobs (the main state "" first).
  for job in jobs:
    states.setdefault(job.state, []).append(job)
  histories, cost, pretrain_reports = {}, {}, {}
  todo_names = {j.name for j in todo}
  for state, state_jobs in states.items():
    run_here = [j for j in state_jobs if j.name in todo_names]
    if not run_here and (stage == "job" or state):
      continue  # A job of another state (stage "job"), or nothing of this state to do.
    setup, prod, pretrain_report, setup_s = _state_production(out_dir, state_jobs, jobs, stage,
                                                              stop)
    pretrain_reports[state] = pretrain_report
    suffix = f"_{state}" if state else ""
    cost[f"setup{suffix}_s"] = setup_s
    cost[f"pretrain{suffix}_s"] = pretrain_report["wall_s"]
    if stage == "pretrain":
      continue
    if state == "":
      steps_per_epoch = setup.n_train // config.sim.batch_size
    for i, job in enumerate(run_here):
      workdir = out_dir / "runs" / job.name
      workdir_lib.make(workdir)
      with contextlib.ExitStack() as job_lock:
        if parallel.is_primary():
          job_lock.enter_context(workdir_lib.lock(workdir, holder=f"study job {job.name}",
                                                  what="study job", option="--out"))
        if _finished(job, workdir):
          log.info("job %d/%d %s: already finished, reusing", i + 1, len(run_here), job.name)
          histories[job.name], timing = _load_job(job, workdir)
        else:
          log.info("job %d/%d %s: %s, %d point(s) x %d repetitions", i + 1, len(run_here),
                   job.name, job.config.mode, len(job.worlds.points), job.config.repetitions)
          histories[job.name], timing = _run_job(job, setup, prod, pretrain_report, workdir,
                                                 stop)
      cost[job.name] = timing["wall_s"]
    del setup, prod
  if stage in ("pretrain", "job") or not parallel.is_primary():
    return None
  summary = summary_lib.summarize(config, jobs, histories, pretrain_reports)
  summary["verdict"] = verdict_lib.verdict(config, summary)
  summary["steps_per_epoch"] = steps_per_epoch
  summary["command"] = command
  summary["package_commit"] = provenance.package_commit()
  cost["pretrain_and_jobs_s"] = (sum(v for k, v in cost.items() if k.startswith("pretrain"))
                                 + sum(cost[j.name] for j in jobs))
  cost["this_invocation_s"] = time.perf_counter() - t0
  summary["cost"] = cost
  # Compact (~10^5 numbers), 7 significant digits: float32-level precision.
  writing.write_json(out_dir / "study.json", writing.jsonable(summary, digits=7), indent=None)
  compact.write_table(out_dir)  # per_rep.parquet: what study.json is recomputed from.
  figures.figures(config, summary, out_dir)  # NaN (not JSON null) where undefined.
  report.report(config, summary, out_dir)
  summary = writing.jsonable(summary)
  log.info("wrote %s (%.0f s in this invocation)", out_dir / "report.md",
           time.perf_counter() - t0)
  return summary
