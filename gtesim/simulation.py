"""Runs one mode: data, pretraining, compiled chunks of steps, outputs (SPEC §4-§6).

Global mode has two worlds per repetition, GT (every user ranked with alpha_T) and GC
(alpha_C), each with its own models, optimizer state and used mask. An A/B design has one
world with two arms (T, C): each arm its own label models, one used mask. Worlds and
repetitions are vmap axes of one jit-compiled chunk of `sim.validate_every` scanned steps; the
host loop around it validates, logs, checkpoints and writes results.
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
from gtesim import parallel
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

# Result groups (world x arm) of each kind of run, and their legend labels.
GLOBAL_GROUPS = ("GT", "GC")
AB_GROUPS = ("T", "C")
GROUP_LABELS = {"GT": "GT (treatment)", "GC": "GC (control)", "T": "treatment arm",
                "C": "control arm", "G": "G on new items"}
WEIGHT_METRICS = ("loss", "auc", "accuracy")  # Order of StepOut.weight_model.
# Keys that may differ between a run and its resumption.
RESUMABLE_KEYS = ("sim.n_steps", "checkpoint_every")


def design_of(config) -> step_lib.Design:
  exp = config.experiment
  return step_lib.Design(config.mode, exp.p_treatment, exp.assignment,
                         config.sim.train_models and config.mode != "snapshot",
                         exp.weight_clip, exp.g_update == "before")


def groups_of(design: step_lib.Design) -> tuple:
  return GLOBAL_GROUPS if design.arms == 1 else AB_GROUPS


def world_alphas(config) -> np.ndarray:
  """[W, A, L]: global: worlds GT (alpha_T) and GC (alpha_C) of one arm each; A/B: one world
  whose arms T and C rank with alpha_T and alpha_C."""
  alphas = np.array([[config.labels[n][f"alpha_{arm}"] for n in config.labels]
                     for arm in ("T", "C")], np.float32)
  return alphas[:, None] if config.mode == "global" else alphas[None]


@dataclasses.dataclass
class Setup:
  """Everything loaded and built before the first step."""
  ds: dataset.Dataset
  packed: packing.Packed
  env: device_data.Env  # Replicated on the mesh.
  reps: device_data.RepData  # Stacked over repetitions, split over the mesh.
  reps_host: device_data.RepData  # The same on the host.
  pretrain_rows: device_data.EvalRows  # Stacked over repetitions, split over the mesh.
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
  reps_host = device_data.stack([m[0] for m in made])
  n_train = int(reps_host.train_users.shape[1])
  if config.sim.batch_size > n_train:
    raise InputError(f"config key sim.batch_size ({config.sim.batch_size}) exceeds the "
                     f"{n_train} train users; lower it or data.user_p_val.")
  if config.pretrain.batch_size > config.pretrain.n_interactions:
    raise InputError("config key pretrain.batch_size exceeds pretrain.n_interactions.")
  static = device_data.make_static(ds, packed)
  design = design_of(config)
  spec = step_lib.SimSpec(static, models_lib.label_models(config), config.sim.batch_size,
                          config.sim.n_candidate, config.sim.updates_per_step, n_train, design,
                          models_lib.weight_model(config) if design.uses_weight_model else None)
  log_run.info("features: user %d + video %d = %d wide; window %d slots per user; %d train "
               "users per repetition", static.user_layout.width, static.video_layout.width,
               static.width, packed.window, n_train)
  mesh = parallel.rep_mesh(config.repetitions)
  log_run.info("%d repetitions on %d device(s) (%s)", config.repetitions,
               parallel.devices_used(mesh), jax.devices()[0].platform)
  return Setup(ds, packed, parallel.replicate(device_data.make_env(ds, packed), mesh),
               parallel.shard_reps(reps_host, mesh), reps_host,
               parallel.shard_reps(device_data.stack([m[1] for m in made]), mesh), spec,
               rep_indices)


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
      """{split: {metric: [B, W, A]}} of every world's arms."""
      def per_rep(params_w, rep):
        def per_world(arm_params):
          per_arm = [{"val": step_lib.evaluate(spec, env, rep, p, rep.val_rows),
                      "train": step_lib.evaluate(spec, env, rep, p, rep.train_rows)}
                     for p in arm_params]
          return jax.tree.map(lambda *xs: jnp.stack(xs), *per_arm)
        return jax.vmap(per_world)(params_w)
      return jax.vmap(per_rep)(params, reps)

    def init(reps, rows, env):
      def one(rep, w):
        params = pretrain.init_params(spec, env, rep, w)
        g_params = pretrain.init_weight_model(spec, rep)
        return (params, pretrain.init_opt_state(spec.models, params), g_params,
                pretrain.init_opt_state(pretrain.weight_models(spec), g_params))
      return jax.vmap(one)(reps, rows)

    def pretrain_epoch(state, reps, rows, env, index):
      return jax.vmap(lambda s, r, w: pretrain.epoch(spec, pretrain_batch, env, r, w, s, index))(
          state, reps, rows)

    def fresh(state, n_worlds, n_pages):
      """World states [B, W]: every arm starts from the pretrained models, fresh optimizer."""
      params, _, g_params, g_opt = state
      def per_world(p, gp, go):
        arms = tuple(p for _ in range(spec.design.arms))
        return step_lib.WorldState(
            arms, tuple(pretrain.init_opt_state(spec.models, a) for a in arms), gp, go,
            jnp.zeros((n_pages, spec.static.page_slots), bool))
      one = jax.vmap(per_world)  # Over repetitions.
      worlds = [one(params, g_params, g_opt) for _ in range(n_worlds)]
      return jax.tree.map(lambda *xs: jnp.stack(xs, axis=1), *worlds)

    self.chunk = jax.jit(chunk, donate_argnums=0)
    self.evaluate = jax.jit(evaluate)
    self.init = jax.jit(init)
    self.pretrain_epoch = jax.jit(pretrain_epoch, donate_argnums=0)
    self.fresh = jax.jit(fresh, static_argnums=(1, 2))


def _pretrain(config, setup: Setup, fns: Compiled):
  state = fns.init(setup.reps, setup.pretrain_rows, setup.env)
  names = [m.name for m in setup.spec.models]
  for e in range(config.pretrain.epochs):
    state, loss = fns.pretrain_epoch(state, setup.reps, setup.pretrain_rows, setup.env, e)
    loss = parallel.to_host(loss).mean(0)
    log_pre.info("epoch %d/%d: %s (mean over %d repetitions)", e + 1, config.pretrain.epochs,
                 ", ".join(f"{n} loss {v:.4f}" for n, v in zip(names, loss)),
                 config.repetitions)
  return state


def _fresh_states(setup: Setup, fns: Compiled, pretrained, n_worlds):
  return fns.fresh(pretrained, n_worlds, setup.packed.video.shape[0])


def _metric_rows(evaluated):
  """{split: {name: [B, W, A]}} -> {"split|name": [1, B, G]} (G = W x A groups)."""
  out = {}
  for split, d in parallel.to_host(evaluated).items():
    for name, v in d.items():
      v = np.asarray(v)
      out[f"{split}|{name}"] = v.reshape(v.shape[0], -1)[None]
  return out


def _log_validation(step, rows, groups):
  parts = []
  for key, values in rows.items():
    split, name = key.split("|")
    if split == "val" or split == "new":
      by_group = [_finite_mean(v) for v in np.moveaxis(values[0], 0, -1)]
      by_group = [np.nan if v is None else v for v in by_group]
      parts.append(f"{name} " + "/".join(f"{v:.4f}" for v in by_group))
  log_val.info("step %d: %s (%s, mean over repetitions)", step, ", ".join(parts),
               "/".join(groups))


def _check_resume_config(config, workdir):
  diff = config_check.first_difference(json.loads((workdir / "config.json").read_text()),
                                       json.loads(config.to_json_best_effort()),
                                       RESUMABLE_KEYS)
  if diff:
    key, saved, now = diff
    raise InputError(f"--resume: config key {key} is {now!r} but the run in {workdir} used "
                     f"{saved!r}; resume with the same config (only "
                     f"{', '.join(RESUMABLE_KEYS)} may change).")


def run(config, workdir, resume=False) -> dict:
  """Runs the configured study into `workdir` and returns result.json's content."""
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  logs.setup(workdir / "run.log" if parallel.is_primary() else None)
  config_check.check(config)
  if resume and not (workdir / "config.json").exists():
    raise InputError(f"--resume: {workdir} holds no run (no config.json).")
  if resume:
    _check_resume_config(config, workdir)
  log_run.info("mode %s, %d repetitions from %d, seed %d, %d steps, workdir %s", config.mode,
               config.repetitions, config.rep_offset, config.seed, config.sim.n_steps, workdir)
  t_start = time.perf_counter()
  setup = build(config)
  if parallel.is_primary():
    io.write_json(workdir / "config.json", json.loads(config.to_json_best_effort()))
    def per_rep(enc):
      return [{k: v[b] for k, v in enc.items()} for b in range(config.repetitions)]
    io.write_json(workdir / "encoding.json", {
        "user": encoding.describe(setup.ds.users, per_rep(setup.reps_host.user_enc)),
        "video": encoding.describe(setup.ds.videos, per_rep(setup.reps_host.video_enc))})
  chunk_len = config.sim.validate_every
  fns = Compiled(setup.spec, chunk_len, config.pretrain.batch_size)
  alphas = jnp.asarray(world_alphas(config))
  n_worlds = alphas.shape[0]
  groups = groups_of(setup.spec.design)
  ckpts = ckpt_lib.Checkpoints(workdir / "checkpoints")
  start = ckpts.latest_step() if resume else None

  if start is not None:
    pretrained = fns.init(setup.reps, setup.pretrain_rows, setup.env)
    states, history = ckpts.restore(start, _fresh_states(setup, fns, pretrained, n_worlds))
    history = {k: np.asarray(v) for k, v in history.items()}
    log_run.info("resumed from the checkpoint at step %d", start)
  else:
    t0 = time.perf_counter()
    pretrained = _pretrain(config, setup, fns)
    log_pre.info("pretrained in %.1f s", time.perf_counter() - t0)
    states = _fresh_states(setup, fns, pretrained, n_worlds)
    start = 0
    history = {"eval_step": np.zeros((1,), np.int64),
               **_metric_rows(fns.evaluate(states.params, setup.reps, setup.env))}
    if setup.spec.design.uses_weight_model:  # G has seen no experiment data yet.
      for metric in WEIGHT_METRICS:
        history[f"new|weight/{metric}"] = np.full((1, config.repetitions, 1), np.nan)
    _log_validation(0, {k: v for k, v in history.items() if k != "eval_step"}, groups)

  n_steps = config.sim.n_steps
  recs_per_step = config.repetitions * n_worlds * config.sim.batch_size
  bar = tqdm(total=n_steps, initial=start, unit="step", file=sys.stderr, dynamic_ncols=True,
             disable=None)
  compile_s, steps_timed, time_timed = None, 0, 0.0
  for t in range(start, n_steps, chunk_len):
    tic = time.perf_counter()
    states, out = fns.chunk(states, setup.reps, setup.env, alphas, jnp.int32(t))
    out = parallel.to_host(out)  # Blocks until the chunk is done.
    elapsed = time.perf_counter() - tic
    if compile_s is None:
      compile_s = elapsed
    else:
      steps_timed += chunk_len
      time_timed += elapsed
    new = {}
    for name, value in out._asdict().items():
      value = np.moveaxis(value, 2, 0)  # [B, W, T, ...] -> [T, B, W, ...]
      if name == "weight_model":
        if setup.spec.design.uses_weight_model:
          mean = np.nanmean(value, axis=0)[None, :, 0]  # [1, B, 3] over the chunk's steps.
          for i, metric in enumerate(WEIGHT_METRICS):
            new[f"new|weight/{metric}"] = mean[..., i:i + 1]
        continue
      shape = value.shape
      history_key = f"step|{name}"
      value = value.reshape(shape[:2] + (-1,) + shape[4:])  # Worlds x arms -> groups.
      history[history_key] = (np.concatenate([history[history_key], value])
                              if history_key in history else value)
    new.update(_metric_rows(fns.evaluate(states.params, setup.reps, setup.env)))
    history["eval_step"] = np.append(history["eval_step"], t + chunk_len)
    for k, v in new.items():
      history[k] = np.concatenate([history[k], v]) if k in history else v
    rate = recs_per_step * chunk_len / elapsed
    bar.update(chunk_len)
    bar.set_postfix_str(f"{rate:,.0f} rec/s")
    log_train.info("step %d/%d (%.0f rec/s)", t + chunk_len, n_steps, rate)
    _log_validation(t + chunk_len, new, groups)
    if (t + chunk_len) % config.checkpoint_every == 0 or t + chunk_len == n_steps:
      ckpts.save(t + chunk_len, states, history)
  bar.close()
  ckpts.close()

  timing = {"wall_s": time.perf_counter() - t_start, "first_chunk_s": compile_s,
            "steady_rec_per_s": recs_per_step * steps_timed / time_timed if time_timed else None,
            "chunk_traces": fns.chunk_traces}
  dataset_info = {k: setup.ds.overview[k] for k in outputs.DATASET_KEYS}
  if not parallel.is_primary():
    return None
  return write_outputs(config, dataset_info, history, setup.rep_indices, workdir, timing)


def write_outputs(config, dataset_info, history, rep_indices, workdir, timing) -> dict:
  """result.json, steps.parquet, metrics.parquet and the figure of a run's history.

  Args:
    dataset_info: result.json's `dataset` entry.
    history: {"step|<StepOut field>": [T, B, G, ...], "<split>|<metric>": [E, B, G'],
      "eval_step": [E]}, G the run's groups (worlds x arms), G' = 1 for split "new".
    rep_indices: [B] absolute repetition indices.
  """
  labels = list(config.labels)
  groups = groups_of(design_of(config))
  outcome = history["step|outcome_sum"].astype(np.float64).sum(0)  # [B, G, L]
  outcome_sq = history["step|outcome_sq"].astype(np.float64).sum(0)
  n_recs = history["step|n_recs"].astype(np.int64).sum(0)  # [B, G]
  result = {"mode": config.mode, "repetitions": config.repetitions,
            "rep_offset": config.rep_offset, "seed": config.seed,
            "n_steps": config.sim.n_steps,
            "dataset": dataset_info}
  if config.mode == "global":
    result.update(outputs.global_result(labels, list(groups), outcome, n_recs))
  else:
    result["p_treatment"] = config.experiment.p_treatment
    result["assignment"] = config.experiment.assignment
    result.update(outputs.ab_result(labels, outcome, outcome_sq, n_recs))
  for name, key in (("recommendations", "n_recs"), ("exhausted_users", "n_exhausted"),
                    ("short_users", "n_short")):
    totals = history[f"step|{key}"].sum(0)
    result[name] = {g: totals[:, i].tolist() for i, g in enumerate(groups)}
  final = {}
  for key, values in history.items():
    split = key.split("|")[0]
    if split in ("val", "train", "new"):
      names = groups if split != "new" else ("G",)
      for i, group in enumerate(names):
        metric = key.replace("|", "/")
        final.setdefault(group, {})[metric] = _finite_mean(values[-1][:, i])
        final[group][metric + "@0"] = _finite_mean(values[0][:, i])
  result["metrics_final_and_at_step_0"] = final
  result["timing"] = {k: v for k, v in timing.items() if v is not None}
  _write_tables(rep_indices, history, workdir, labels, groups)
  io.write_json(workdir / "result.json", result)
  for name in labels:
    g = result["gte"][name]
    if config.mode == "global":
      log_result.info("%s: GT %.6g, GC %.6g, GTE %.6g +- %.2g (sd %.2g over %d repetitions, "
                      "%.2f%%)", name, result["gt"][name]["mean"], result["gc"][name]["mean"],
                      g["mean"], g["se"], g["std"], config.repetitions, g["pct_mean"])
    else:
      log_result.info("%s: %s estimate %.6g (sd %.2g over %d repetitions; mean CI half-width "
                      "%.2g)", name, config.mode, g["mean"], g["std"], config.repetitions,
                      float(np.mean(g["se_per_rep"])) * 1.96)
  return result


def _finite_mean(values):
  """Mean over repetitions of the finite values; None (JSON null) if there are none."""
  values = np.asarray(values, np.float64)
  values = values[np.isfinite(values)]
  return float(values.mean()) if len(values) else None


def _write_tables(reps, history, workdir, labels, groups):
  flat = {}
  for key, v in history.items():
    if not key.startswith("step|"):
      continue
    name = key.split("|")[1]
    if v.ndim == 4:  # [T, B, G, L]
      flat.update({f"{name}/{label}": v[..., l] for l, label in enumerate(labels)})
    else:
      flat[name] = v
  n_t = len(flat["n_recs"])
  outputs.write_table(workdir / "steps.parquet",
                      outputs.long_table(flat, np.arange(1, n_t + 1), reps, groups))
  steps = history["eval_step"]
  parts = []
  for split in ("train", "val", "new"):
    per = {k.split("|")[1]: v for k, v in history.items() if k.startswith(split + "|")}
    if not per:
      continue
    cols = outputs.long_table(per, steps, reps, groups if split != "new" else ("G",))
    cols["split"] = np.full(len(cols["step"]), split)
    parts.append(cols)
  columns = outputs.concat_columns(parts)
  outputs.write_table(workdir / "metrics.parquet", columns)
  outputs.figure(workdir / "figure", columns, GROUP_LABELS)
