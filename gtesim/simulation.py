"""Runs a study's worlds: data, pretraining, compiled chunks of steps, outputs (SPEC §4-§6).

Global mode has two worlds per repetition, GT (every user ranked with alpha_T) and GC
(alpha_C), each with its own models, optimizer state and used mask. Worlds and repetitions
are vmap axes of one jit-compiled chunk of `sim.validate_every` scanned steps; the host loop
around it validates, logs, checkpoints and writes results.
"""

import dataclasses
import json
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from tqdm import tqdm

from gtesim import checkpoints as ckpt_lib
from gtesim import config_check
from gtesim import device_data
from gtesim import io
from gtesim import logs
from gtesim import models as models_lib
from gtesim import outputs
from gtesim import pretrain
from gtesim import step as step_lib
from gtesim.data import dataset
from gtesim.data import encoding
from gtesim.data import packing
from gtesim.errors import InputError

log_run = logs.get_logger("run")
log_pre = logs.get_logger("pretrain")
log_train = logs.get_logger("train")
log_val = logs.get_logger("validate")
log_result = logs.get_logger("result")

WORLDS = ("GT", "GC")
WORLD_LABELS = {"GT": "GT (treatment)", "GC": "GC (control)"}
# Keys that may differ between a run and its resumption.
RESUMABLE_KEYS = ("sim.n_steps", "checkpoint_every")


def world_alphas(config) -> np.ndarray:
  """[W, L]: GT ranks with every label's alpha_T, GC with alpha_C."""
  return np.array([[config.labels[n][f"alpha_{arm}"] for n in config.labels]
                   for arm in ("T", "C")], np.float32)


@dataclasses.dataclass
class Setup:
  """Everything loaded and built before the first step."""
  ds: dataset.Dataset
  packed: packing.Packed
  env: device_data.Env
  reps: device_data.RepData  # Stacked over repetitions.
  pretrain_rows: device_data.EvalRows  # Stacked over repetitions.
  spec: step_lib.SimSpec
  rep_indices: np.ndarray


def build(config) -> Setup:
  """Loads the data and builds the device arrays and per-repetition set-up."""
  config_check.check(config)
  ds = dataset.load(config)
  packed = packing.pack(ds, config.data.max_history, config.data.page_slots,
                        config.data.pack_seed)
  ov = ds.overview
  log_run.info("dataset %s: %s users, %s videos, %s interactions, click rate %.4f, mean play "
               "time %.0f ms", ov["folder"], f"{ov['n_users']:,}", f"{ov['n_videos']:,}",
               f"{ov['n_interactions']:,}", ov["click_rate"], ov["mean_play_time_ms"])
  rep_indices = config.rep_offset + np.arange(config.repetitions)
  made = [device_data.make_rep(config, ds, packed, int(r)) for r in rep_indices]
  reps = device_data.stack([m[0] for m in made])
  n_train = int(reps.train_users.shape[1])
  if config.sim.batch_size > n_train:
    raise InputError(f"config key sim.batch_size ({config.sim.batch_size}) exceeds the "
                     f"{n_train} train users; lower it or data.user_p_val.")
  if config.pretrain.batch_size > config.pretrain.n_interactions:
    raise InputError("config key pretrain.batch_size exceeds pretrain.n_interactions.")
  static = device_data.make_static(ds, packed)
  spec = step_lib.SimSpec(static, models_lib.label_models(config), config.sim.batch_size,
                          config.sim.n_candidate, config.sim.updates_per_step, n_train)
  log_run.info("features: user %d + video %d = %d wide; window %d slots per user; %d train "
               "users per repetition", static.user_layout.width, static.video_layout.width,
               static.width, packed.window, n_train)
  return Setup(ds, packed, device_data.make_env(ds, packed), reps,
               device_data.stack([m[1] for m in made]), spec, rep_indices)


class Compiled:
  """The jit-compiled functions of a run; counts how often the chunk is traced."""

  def __init__(self, spec: step_lib.SimSpec, chunk_len: int, pretrain_batch: int):
    self.chunk_traces = 0

    def chunk(states, reps, env, alphas, t0):
      self.chunk_traces += 1

      def per_rep(state_w, rep):
        def per_world(state, alpha):
          return lax.scan(lambda s, t: step_lib.step(spec, env, rep, alpha, s, t), state,
                          t0 + jnp.arange(chunk_len))
        return jax.vmap(per_world)(state_w, alphas)
      return jax.vmap(per_rep)(states, reps)

    def evaluate(params, reps, env):
      def per_rep(params_w, rep):
        def per_world(p):
          return {"val": step_lib.evaluate(spec, env, rep, p, rep.val_rows),
                  "train": step_lib.evaluate(spec, env, rep, p, rep.train_rows)}
        return jax.vmap(per_world)(params_w)
      return jax.vmap(per_rep)(params, reps)

    def init(reps, rows, env):
      params = jax.vmap(lambda r, w: pretrain.init_params(spec, env, r, w))(reps, rows)
      return params, jax.vmap(lambda p: pretrain.init_opt_state(spec, p))(params)

    def pretrain_epoch(params, opt_state, reps, rows, env, index):
      return jax.vmap(lambda p, o, r, w: pretrain.epoch(spec, pretrain_batch, env, r, w, p, o,
                                                         index))(params, opt_state, reps, rows)

    self.chunk = jax.jit(chunk, donate_argnums=0)
    self.evaluate = jax.jit(evaluate)
    self.init = jax.jit(init)
    self.pretrain_epoch = jax.jit(pretrain_epoch, donate_argnums=(0, 1))
    self.init_opt = jax.jit(jax.vmap(jax.vmap(lambda p: pretrain.init_opt_state(spec, p))))


def _pretrain(config, setup: Setup, fns: Compiled):
  params, opt_state = fns.init(setup.reps, setup.pretrain_rows, setup.env)
  names = [m.name for m in setup.spec.models]
  for e in range(config.pretrain.epochs):
    params, opt_state, loss = fns.pretrain_epoch(params, opt_state, setup.reps,
                                                 setup.pretrain_rows, setup.env, e)
    loss = np.asarray(loss).mean(0)
    log_pre.info("epoch %d/%d: %s (mean over %d repetitions)", e + 1, config.pretrain.epochs,
                 ", ".join(f"{n} loss {v:.4f}" for n, v in zip(names, loss)),
                 config.repetitions)
  return params


def _fresh_states(setup: Setup, fns: Compiled, params):
  """World states [B, W]: every world starts from the pretrained params, fresh optimizer."""
  w = len(WORLDS)
  params_bw = jax.tree.map(lambda x: jnp.repeat(x[:, None], w, axis=1), params)
  b = setup.reps.train_users.shape[0]
  used = jnp.zeros((b, w) + setup.packed.video.shape, bool)
  return step_lib.WorldState(params_bw, fns.init_opt(params_bw), used)


def _metric_rows(step, evaluated):
  """{split: {name: [B, W]}} -> a dict of arrays with a leading length-1 step axis."""
  return {f"{split}|{name}": np.asarray(v)[None] for split, d in evaluated.items()
          for name, v in d.items()}


def _log_validation(step, rows):
  parts = []
  for key, values in rows.items():
    split, name = key.split("|")
    if split == "val":
      by_world = values[0].mean(0)
      parts.append(f"{name} " + "/".join(f"{v:.4f}" for v in by_world))
  log_val.info("step %d: %s (GT/GC, mean over repetitions)", step, ", ".join(parts))


def _check_resume_config(config, workdir):
  saved = json.loads((workdir / "config.json").read_text())
  now = json.loads(config.to_json_best_effort())
  def flat(d, prefix=""):
    out = {}
    for k, v in d.items():
      out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out
  saved, now = flat(saved), flat(now)
  for key in sorted(set(saved) | set(now)):
    if key not in RESUMABLE_KEYS and saved.get(key) != now.get(key):
      raise InputError(f"--resume: config key {key} is {now.get(key)!r} but the run in "
                       f"{workdir} used {saved.get(key)!r}; resume with the same config "
                       f"(only {', '.join(RESUMABLE_KEYS)} may change).")


def run(config, workdir, resume=False) -> dict:
  """Runs the configured study into `workdir` and returns result.json's content."""
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  logs.setup(workdir / "run.log")
  config_check.check(config)
  if resume and not (workdir / "config.json").exists():
    raise InputError(f"--resume: {workdir} holds no run (no config.json).")
  if resume:
    _check_resume_config(config, workdir)
  log_run.info("mode %s, %d repetitions from %d, seed %d, %d steps, workdir %s", config.mode,
               config.repetitions, config.rep_offset, config.seed, config.sim.n_steps, workdir)
  t_start = time.perf_counter()
  setup = build(config)
  io.write_json(workdir / "config.json", json.loads(config.to_json_best_effort()))
  def per_rep(enc):
    return [{k: np.asarray(v[b]) for k, v in enc.items()} for b in range(config.repetitions)]
  io.write_json(workdir / "encoding.json", {
      "user": encoding.describe(setup.ds.users, per_rep(setup.reps.user_enc)),
      "video": encoding.describe(setup.ds.videos, per_rep(setup.reps.video_enc))})
  chunk_len = config.sim.validate_every
  fns = Compiled(setup.spec, chunk_len, config.pretrain.batch_size)
  alphas = jnp.asarray(world_alphas(config))
  ckpts = ckpt_lib.Checkpoints(workdir / "checkpoints")
  start = ckpts.latest_step() if resume else None

  if start is not None:
    template = _fresh_states(setup, fns, fns.init(setup.reps, setup.pretrain_rows, setup.env)[0])
    states, history = ckpts.restore(start, template)
    history = {k: np.asarray(v) for k, v in history.items()}
    log_run.info("resumed from the checkpoint at step %d", start)
  else:
    t0 = time.perf_counter()
    params = _pretrain(config, setup, fns)
    log_pre.info("pretrained in %.1f s", time.perf_counter() - t0)
    states = _fresh_states(setup, fns, params)
    start = 0
    history = {"eval_step": np.zeros((1,), np.int64),
               **_metric_rows(0, fns.evaluate(states.params, setup.reps, setup.env))}
    _log_validation(0, {k: v for k, v in history.items() if k != "eval_step"})

  n_steps = config.sim.n_steps
  recs_per_step = config.repetitions * len(WORLDS) * config.sim.batch_size
  bar = tqdm(total=n_steps, initial=start, unit="step", file=sys.stderr, dynamic_ncols=True,
             disable=None)
  compile_s, t_loop = None, time.perf_counter()
  steps_done_timed, time_timed = 0, 0.0
  for t in range(start, n_steps, chunk_len):
    tic = time.perf_counter()
    states, out = fns.chunk(states, setup.reps, setup.env, alphas, jnp.int32(t))
    out = jax.tree.map(np.asarray, out)  # Blocks until the chunk is done.
    elapsed = time.perf_counter() - tic
    if compile_s is None:
      compile_s = elapsed
    else:
      steps_done_timed += chunk_len
      time_timed += elapsed
    for name, value in out._asdict().items():
      value = np.moveaxis(value, 2, 0)  # [B, W, T, ...] -> [T, B, W, ...]
      history[f"step|{name}"] = np.concatenate([history[f"step|{name}"], value]) \
          if f"step|{name}" in history else value
    evaluated = _metric_rows(t + chunk_len, fns.evaluate(states.params, setup.reps, setup.env))
    history["eval_step"] = np.append(history["eval_step"], t + chunk_len)
    for k, v in evaluated.items():
      history[k] = np.concatenate([history[k], v])
    rate = recs_per_step * chunk_len / elapsed
    bar.update(chunk_len)
    bar.set_postfix_str(f"{rate:,.0f} rec/s")
    log_train.info("step %d/%d (%.0f rec/s)", t + chunk_len, n_steps, rate)
    _log_validation(t + chunk_len, evaluated)
    if (t + chunk_len) % config.checkpoint_every == 0 or t + chunk_len == n_steps:
      ckpts.save(t + chunk_len, states, history)
  bar.close()
  ckpts.close()

  timing = {"wall_s": time.perf_counter() - t_start, "first_chunk_s": compile_s,
            "steady_rec_per_s": (recs_per_step * steps_done_timed / time_timed
                                 if time_timed else None),
            "chunk_traces": fns.chunk_traces}
  result = _write_outputs(config, setup, history, workdir, timing)
  return result


def _write_outputs(config, setup: Setup, history, workdir, timing) -> dict:
  labels = [m.name for m in setup.spec.models]
  outcome = history["step|outcome_sum"].astype(np.float64).sum(0)  # [B, W, L]
  n_recs = history["step|n_recs"].astype(np.int64).sum(0)  # [B, W]
  result = {"mode": config.mode, "repetitions": config.repetitions,
            "rep_offset": config.rep_offset, "seed": config.seed,
            "n_steps": config.sim.n_steps,
            "dataset": {k: setup.ds.overview[k] for k in outputs.DATASET_KEYS}}
  result.update(outputs.global_result(labels, list(WORLDS), outcome, n_recs))
  for w, world in enumerate(WORLDS):
    result.setdefault("recommendations", {})[world] = n_recs[:, w].tolist()
    result.setdefault("exhausted_users", {})[world] = history["step|n_exhausted"].sum(0)[
        :, w].tolist()
    result.setdefault("short_users", {})[world] = history["step|n_short"].sum(0)[:, w].tolist()
  final = {}
  for key, values in history.items():
    if "|" in key and key.split("|")[0] in ("val", "train"):
      for w, world in enumerate(WORLDS):
        final.setdefault(world, {})[key.replace("|", "/")] = float(np.nanmean(values[-1][:, w]))
        if len(values) > 0:
          final[world][key.replace("|", "/") + "@0"] = float(np.nanmean(values[0][:, w]))
  result["metrics_final_and_at_step_0"] = final
  result["timing"] = {k: v for k, v in timing.items() if v is not None}
  _write_tables(setup, history, workdir, labels)
  io.write_json(workdir / "result.json", result)
  for name in labels:
    g = result["gte"][name]
    log_result.info("%s: GT %.6g, GC %.6g, GTE %.6g +- %.2g (sd %.2g over %d repetitions, "
                    "%.2f%%)", name, result["gt"][name]["mean"], result["gc"][name]["mean"],
                    g["mean"], g["se"], g["std"], config.repetitions, g["pct_mean"])
  return result


def _write_tables(setup: Setup, history, workdir, labels):
  reps = setup.rep_indices
  step_hist = {k.split("|")[1]: v for k, v in history.items() if k.startswith("step|")}
  n_t = len(step_hist["n_recs"])
  flat = {}
  for name, v in step_hist.items():
    if v.ndim == 4:  # [T, B, W, L]
      flat.update({f"{name}/{label}": v[..., l] for l, label in enumerate(labels)})
    else:
      flat[name] = v
  outputs.write_table(workdir / "steps.parquet",
                      outputs.long_table(flat, np.arange(1, n_t + 1), reps, WORLDS))
  steps = history["eval_step"]
  columns = {}
  for split in ("train", "val"):
    per = {k.split("|")[1]: v for k, v in history.items() if k.startswith(split + "|")}
    cols = outputs.long_table(per, steps, reps, WORLDS)
    cols["split"] = np.full(len(cols["step"]), split)
    for k, v in cols.items():
      columns[k] = np.concatenate([columns[k], v]) if k in columns else v
  outputs.write_table(workdir / "metrics.parquet", columns)
  outputs.figure(workdir / "figure", columns, WORLD_LABELS)
