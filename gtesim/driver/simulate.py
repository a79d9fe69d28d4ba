"""The host driver of one run: pretraining, compiled chunks of steps, checkpoints, outputs.

Global mode runs, per repetition, a GT world at every sweep point (treatment alphas at that
alpha gap) and one GC world; an A/B design runs one world per sweep point with two arms (T,
C), each arm its own label models, one used mask. The pure functions come from `gtesim.core`;
this module only loops over chunks, validates, logs, checkpoints and writes results (SPEC
§4-§6).
"""

import json
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from gtesim import designs
from gtesim import logs
from gtesim import models as models_lib
from gtesim import throughput
from gtesim import writing
from gtesim.config import checks as config_checks
from gtesim.core import mapping
from gtesim.core import simulation
from gtesim.core.state import Point
from gtesim.data import encoding
from gtesim.driver import checkpoints as ckpt_lib
from gtesim.driver import history as history_lib
from gtesim.driver import parallel
from gtesim.driver import results
from gtesim.driver import scalars as scalars_lib
from gtesim.driver import setup as setup_lib
from gtesim.driver import stopping
from gtesim.driver import workdir as workdir_lib
from gtesim.errors import NumericalError, one_line
from gtesim.stats import descriptive

log_run = logs.get_logger("run")
log_pre = logs.get_logger("pretrain")
log_train = logs.get_logger("train")
log_val = logs.get_logger("validate")


def point_inputs(config, worlds: designs.Worlds) -> Point:
  """The traced inputs of the run's worlds, as device arrays."""
  alpha_t = [config.labels[n].alpha_T for n in config.labels]
  alpha_c = [config.labels[n].alpha_C for n in config.labels]
  point = worlds.point_inputs(alpha_t, alpha_c)
  return jax.tree.map(jnp.asarray, point)


def _duration(seconds: float) -> str:
  """'42 s', '3 min 05 s', '2 h 07 min'."""
  seconds = int(round(seconds))
  if seconds < 60:
    return f"{seconds} s"
  if seconds < 3600:
    return f"{seconds // 60} min {seconds % 60:02d} s"
  return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _check_finite(values, what, labels, t0, rep_indices, pos=None, where=""):
  """Raises NumericalError naming the first non-finite value of [B, ..., L] arrays (the
  step is t0 + 1 + the index on axis `pos`)."""
  values = np.asarray(values)
  bad = ~np.isfinite(values)
  if not bad.any():
    return
  idx = np.argwhere(bad)[0]
  if pos is not None:
    where = f"step {t0 + idx[pos] + 1}, "
  raise NumericalError(f"non-finite {what} ({values[tuple(idx)]}) at {where}repetition "
                       f"{rep_indices[idx[0]]}, label '{labels[idx[-1]]}'. The run stops here; "
                       "its last checkpoint is kept. Check the labels' range, learning rates "
                       "and alphas.")


def pretrain_production(config, setup: setup_lib.Setup, fns: mapping.Compiled, stop=None,
                        scalars=None):
  """Pretrains the label models until their validation loss plateaus (SPEC §3).

  Returns (Production stacked over repetitions, report dict for result.json). The report's
  curve holds every epoch's per-repetition training loss (NaN once a model has stopped) and
  validation metrics.
  """
  labels = models_lib.ranker_label_names(config)  # The labels, or <arm>.<label> per ranker.
  pre = config.pretrain
  prod = fns.init(setup.env, setup.reps, setup.pretrain_rows)
  curve = {"train_loss": {l: [] for l in labels}, "val": {}}
  t0 = time.perf_counter()
  epochs = pre.max_epochs if pre.enabled else 0
  bar = tqdm(total=epochs, unit="epoch", file=sys.stderr, dynamic_ncols=True, disable=None,
             desc="pretrain")
  for e in range(epochs):
    stopped_before = parallel.to_host(prod.stopped)
    prod, m = fns.pretrain_epoch(setup.env, setup.reps, setup.pretrain_rows, prod,
                                 jnp.int32(e))
    m = parallel.to_host(m)
    stopped = parallel.to_host(prod.stopped)  # [B, L]
    _check_finite(np.where(stopped_before, 0.0, m["train_loss"]), "pretraining loss", labels,
                  0, setup.rep_indices, where=f"epoch {e + 1}, ")
    for i, l in enumerate(labels):
      curve["train_loss"][l].append(m["train_loss"][:, i].tolist())
    for k, v in m.items():
      if k != "train_loss":
        curve["val"].setdefault(k, []).append(np.asarray(v).tolist())
    bar.update(1)
    if scalars is not None:
      scalars.pretrain_epoch(e + 1, labels, m)
    elapsed = time.perf_counter() - t0
    log_pre.info("epoch %d/%d: train loss %s; val %s; %d of %d models still improving "
                 "(%.0f s; at most %s left, less at a plateau)", e + 1, epochs,
                 ", ".join(f"{l} " + ("stopped" if np.isnan(v) else f"{v:.4f}")
                           for l, v in zip(labels, descriptive.finite_mean(m["train_loss"], 0))),
                 ", ".join(f"{k} {np.nanmean(v):.4f}" for k, v in m.items() if k != "train_loss"),
                 int((~stopped).sum()), stopped.size, elapsed,
                 _duration(elapsed / (e + 1) * (epochs - e - 1)))
    if stopped.all():
      break
    if stop is not None and stop.requested():
      raise stopping.Stopped(f"stopped by {stop.signal_name} during pretraining (epoch {e + 1}"
                             f" of {epochs}); nothing to checkpoint yet",
                             "resume with --resume (it starts over)")
  bar.close()
  host = parallel.to_host(prod)
  converged = host.stopped.mean(0)
  if not pre.enabled:
    log_pre.warning("pretrain.enabled is False: the production models are untrained "
                    "(random initialisation)")
  elif converged.min() < 1:
    log_pre.warning("pretraining reached pretrain.max_epochs = %d before every model's "
                    "validation loss plateaued (%s); raise pretrain.max_epochs",
                    pre.max_epochs, ", ".join(f"{l}: {c:.0%} of repetitions converged"
                                              for l, c in zip(labels, converged)))
  report = {
      "enabled": bool(pre.enabled), "rows": int(setup.pretrain_rows.user.shape[1]),
      "batch_size": pre.batch_size, "max_epochs": pre.max_epochs, "patience": pre.patience,
      "min_delta": pre.min_delta, "epochs_run": len(curve["train_loss"][labels[0]]),
      "wall_s": time.perf_counter() - t0,
      "best_epoch": {l: host.best_epoch[:, i].tolist() for i, l in enumerate(labels)},
      "best_val_loss": {l: host.best_loss[:, i].tolist() for i, l in enumerate(labels)},
      "converged": {l: host.stopped[:, i].tolist() for i, l in enumerate(labels)},
      "converged_fraction": dict(zip(labels, converged.tolist())), "curve": curve,
      "models": setup.models}
  log_pre.info("pretrained in %.1f s: best epochs (mean) %s", report["wall_s"],
               ", ".join(f"{l} {np.mean(v):.1f}" for l, v in report["best_epoch"].items()))
  return prod, report


def _log_validation(t, evaluated, worlds: designs.Worlds):
  """One line: the first point's validation metrics per world-arm, mean over repetitions."""
  groups = [g for g in worlds.groups() if g[2] in (0, -1)]
  parts, undefined = [], False
  for name, v in evaluated["val"].items():
    v = np.asarray(v)
    means = [descriptive.finite_mean(v[:, w, a]) for w, a, _, _ in groups]
    undefined |= any(not np.isfinite(m) for m in means)
    parts.append(f"{name} " + "/".join(f"{m:.4f}" if np.isfinite(m) else "undefined"
                                       for m in means))
  log_val.info("step %d: %s (%s; mean over the repetitions where defined%s)", t,
               ", ".join(parts), "/".join(n for _, _, _, n in groups),
               "; undefined: in no repetition, e.g. an AUC with one class among the rows"
               if undefined else "")


def run_experiment(config, setup: setup_lib.Setup, fns: mapping.Compiled, worlds_state,
                   worlds: designs.Worlds, points, history, start: int, ckpts=None,
                   desc="train", stop=None, scalars=None):
  """Runs chunks from step `start` to sim.n_steps at the worlds' traced `points`
  (point_inputs); returns (world states, History, timing).

  With `stop` (stopping.StopRequests), a signal ends the run after the current chunk, which
  is checkpointed: stopping.Stopped. `scalars` (scalars.Scalars) gets each interval's
  progress."""
  chunk_len = config.sim.validate_every
  n_steps = config.sim.n_steps
  labels = list(config.labels)
  bar = tqdm(total=n_steps, initial=start, unit="step", file=sys.stderr, dynamic_ncols=True,
             disable=None, desc=desc)
  compile_s, steps_timed, time_timed = None, 0, 0.0
  for t in range(start, n_steps, chunk_len):
    tic = time.perf_counter()
    worlds_state, out = fns.chunk(setup.env, setup.reps, points, worlds_state, jnp.int32(t))
    out = parallel.to_host(out)  # Blocks until the chunk is done.
    elapsed = time.perf_counter() - tic
    if compile_s is None:
      compile_s = elapsed
    else:
      steps_timed += chunk_len
      time_timed += elapsed
    _check_finite(np.moveaxis(out.outcome_sum, 2, 1), "outcome", labels, t, setup.rep_indices,
                  pos=1)
    _check_finite(np.moveaxis(out.outcome_sq, 2, 1), "sum of squared outcomes (float32 "
                  "overflow)", labels, t, setup.rep_indices, pos=1)
    _check_finite(np.moveaxis(out.loss, 2, 1), "training loss", labels, t, setup.rep_indices,
                  pos=1)
    evaluated = parallel.to_host(fns.evaluate(setup.env, setup.reps, worlds_state))
    for field in ("user_var", "unit_var"):  # NaN where undefined; inf only by overflow.
      if field in evaluated and np.isinf(evaluated[field]).any():
        raise NumericalError(f"the {field.replace('_var', '')}-clustered variance overflowed "
                             f"float32 at step {t + chunk_len}; the run stops here, its last "
                             "checkpoint is kept. Rescale the labels (smaller units).")
    history = history_lib.append(history, out, evaluated, t + chunk_len)
    rate = throughput.rec_per_s(config, worlds, chunk_len, elapsed)
    bar.update(chunk_len)
    bar.set_postfix_str(f"{rate:,.0f} rec/s")
    per_step = time_timed / steps_timed if steps_timed else elapsed / chunk_len
    log_train.info("step %d/%d (%.0f rec/s, ETA %s)", t + chunk_len, n_steps, rate,
                   _duration(per_step * (n_steps - t - chunk_len)))
    _log_validation(t + chunk_len, evaluated, worlds)
    if scalars is not None:
      scalars.interval(t + chunk_len, config, history, worlds, evaluated, rate)
    done = t + chunk_len
    stopping_now = stop is not None and done < n_steps and stop.requested()
    if ckpts is not None and (done % config.checkpoint_every == 0 or done == n_steps or
                              stopping_now):
      ckpts.save(done, worlds_state, history_lib.to_dict(history))
    if stopping_now:
      bar.close()
      saved = ("checkpointed" if ckpts is not None else "not checkpointed (no checkpoints)")
      raise stopping.Stopped(f"stopped by {stop.signal_name} at step {done} of {n_steps} "
                             f"({saved})")
  bar.close()
  timing = {"first_chunk_s": compile_s,
            "steady_rec_per_s": (throughput.rec_per_s(config, worlds, steps_timed, time_timed)
                                 if time_timed else None)}
  return worlds_state, history, timing


def start_history(setup, fns, worlds_state, worlds: designs.Worlds):
  evaluated = parallel.to_host(fns.evaluate(setup.env, setup.reps, worlds_state))
  _log_validation(0, evaluated, worlds)
  return history_lib.start(evaluated)


def run(config, workdir, resume=False, overwrite=False) -> dict:
  """Runs the configured mode into `workdir` and returns result.json's content.

  The workdir is locked for the run; one holding another run is refused unless `resume`
  (continue it: same config but a larger sim.n_steps, same data) or `overwrite`.
  """
  config_checks.check(config)  # Before anything is written: a refusal leaves no state.
  workdir = pathlib.Path(workdir)
  workdir_lib.make(workdir)
  with stopping.StopRequests() as stop:
    if not parallel.is_primary():
      return _run(config, workdir, resume, stop)
    with workdir_lib.lock(workdir):
      workdir_lib.prepare(workdir, resume, overwrite)
      return _run(config, workdir, resume, stop)


def restore_newest_good(ckpts, template, workdir):
  """(step, world states, history dict) of the newest checkpoint that restores; a damaged
  newer one is reported and moved aside (workdir/checkpoints-damaged) so that the run's
  later saves never meet it. (None, None, None) when there is none."""
  for step in sorted(ckpts.all_steps(), reverse=True):
    try:
      state, saved = ckpts.restore(step, template)
      return step, state, saved
    except Exception as err:  # pylint: disable=broad-except  # orbax raises many kinds.
      reason = one_line(f"{type(err).__name__}: {err}", 300)
      moved = ckpts.set_aside(step, workdir / "checkpoints-damaged")
      log_run.warning("the checkpoint at step %d does not restore (%s); moved to %s, using "
                      "the previous one", step, reason, moved)
  return None, None, None


def experiment(config, setup: setup_lib.Setup, fns: mapping.Compiled, worlds: designs.Worlds,
               workdir: pathlib.Path, production, resume: bool, stop, desc="train"):
  """The experiment of one run folder, with its checkpoints and TensorBoard scalars: from the
  newest good checkpoint when `resume` finds one, else from `production(scalars)` (the
  pretrained production models). Returns (History, timing)."""
  points = point_inputs(config, worlds)
  ckpts = ckpt_lib.Checkpoints(workdir / "checkpoints", primary=parallel.is_primary())
  board = scalars_lib.Scalars(workdir / scalars_lib.FOLDER)
  try:
    start = None
    if resume and ckpts.latest_step() is not None:
      template = fns.start(setup.env, setup.reps,
                           fns.init(setup.env, setup.reps, setup.pretrain_rows), points)
      start, worlds_state, saved = restore_newest_good(ckpts, template, workdir)
    if start is not None:
      history = history_lib.from_dict(saved)
      log_run.info("resumed from the checkpoint at step %d", start)
    else:
      worlds_state = fns.start(setup.env, setup.reps, production(board), points)
      history = start_history(setup, fns, worlds_state, worlds)
      start = 0
    _, history, timing = run_experiment(config, setup, fns, worlds_state, worlds, points,
                                        history, start, ckpts, desc=desc, stop=stop,
                                        scalars=board)
  finally:
    ckpts.close()
    board.close()
  return history, timing


def _run(config, workdir: pathlib.Path, resume: bool, stop) -> dict:
  logs.setup(workdir / "run.log" if parallel.is_primary() else None)
  log_run.info("mode %s, %d repetitions from %d, seed %d, %d steps, %d sweep point(s), "
               "workdir %s", config.mode, config.repetitions, config.rep_offset, config.seed,
               config.sim.n_steps, len(designs.sweep_points(config)), workdir)
  t_start = time.perf_counter()
  if resume:
    workdir_lib.check_resume(config, workdir)
    done = workdir_lib.finished(config, workdir)
    if done is not None:  # Nothing to do: every file stays as the run wrote it.
      log_run.info("the run in %s already finished its %d steps: nothing to resume (raise "
                   "sim.n_steps to extend it); its results are in %s", workdir,
                   config.sim.n_steps, workdir / "result.json")
      return done
  setup = setup_lib.build(config)
  dataset_info = results.dataset_info(config, setup.ds.overview)
  if resume:
    workdir_lib.check_resume_data(workdir, dataset_info["fingerprint"])
  if parallel.is_primary():
    writing.write_json(workdir / "config.json", json.loads(config.to_json_best_effort()))
    writing.write_json(workdir / "data.json", writing.jsonable(setup.ds.overview))
    def per_rep(enc):
      return [{k: v[b] for k, v in enc.items()} for b in range(config.repetitions)]
    writing.write_json(workdir / "encoding.json", {
        "user": encoding.describe(setup.ds.users, per_rep(setup.reps_host.user_enc)),
        "video": encoding.describe(setup.ds.videos, per_rep(setup.reps_host.video_enc))})
  sim = simulation.make_simulation(config, setup)
  worlds = sim.worlds
  fns = mapping.compile_simulation(sim, setup.mesh)
  pretrain_report = None

  def production(board):
    nonlocal pretrain_report
    if resume:
      log_run.info("no checkpoint to resume in %s: starting the run from the beginning",
                   workdir)
    prod, pretrain_report = pretrain_production(config, setup, fns, stop, board)
    if parallel.is_primary():
      writing.write_json(workdir / "pretrain.json", writing.jsonable(pretrain_report))
    return prod

  history, timing = experiment(config, setup, fns, worlds, workdir, production, resume, stop)
  if pretrain_report is None:  # Resumed: pretrained by the run that started it.
    pretrain_report = json.loads((workdir / "pretrain.json").read_text())
  timing["wall_s"] = time.perf_counter() - t_start
  if not parallel.is_primary():
    return None
  result = results.write_run(config, dataset_info, pretrain_report, history, worlds,
                             setup.rep_indices, workdir, timing)
  log_run.info("done in %s: results in %s (result.json, figure.png, steps.parquet, "
               "metrics.parquet, run.log)", _duration(timing["wall_s"]), workdir)
  return result
