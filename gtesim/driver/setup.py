"""Everything a run loads and builds before its first step: data, device arrays, repetitions."""

import dataclasses

import jax
import numpy as np

from gtesim import designs
from gtesim import environments
from gtesim import logs
from gtesim import models as models_lib
from gtesim import prng
from gtesim.core.state import Env, EvalRows, FeatureTables, Logs, RepData, Static
from gtesim.data import dataset
from gtesim.data import encoding
from gtesim.data import packing
from gtesim.data import splits as splits_lib
from gtesim.driver import parallel
from gtesim.environments import release as release_lib
from gtesim.errors import InputError

log = logs.get_logger("run")


@dataclasses.dataclass
class Setup:
  """The loaded data and the per-repetition set-up, on the devices and on the host."""
  ds: dataset.Dataset
  packed: packing.Packed
  static: Static
  env: Env  # Replicated on the mesh.
  reps: RepData  # Stacked over repetitions, split over the mesh.
  reps_host: RepData  # The same on the host.
  pretrain_rows: EvalRows  # Stacked over repetitions, split over the mesh.
  rep_indices: np.ndarray  # [B] absolute repetition indices.
  mesh: jax.sharding.Mesh
  models: dict  # models.describe: each label's class and ID tables (hashing, collisions).

  @property
  def n_train(self) -> int:
    return int(self.reps_host.train_users.shape[1])


def make_env(config, ds, packed) -> Env:
  """The shared environment as host arrays (placed on devices by `parallel.replicate`)."""
  return Env(Logs(packed.video, packed.labels, packed.first_page, packed.n_pages),
             FeatureTables(ds.users.num, ds.users.cat, tuple(ds.users.multi), ds.videos.num,
                           ds.videos.cat, tuple(ds.videos.multi)),
             environments.get(config).arrays(config, ds, packed))


def make_static(ds, packed) -> Static:
  return Static(encoding.Layout.of(ds.users), encoding.Layout.of(ds.videos),
                packed.page_slots, packed.window_pages, packed.n_env_pages,
                int(ds.users.num.shape[0]), int(ds.videos.num.shape[0]))


def _sample_rows(gen, slots, size):
  """`size` slots drawn without replacement (all of them, padded, when fewer)."""
  pick = slots if len(slots) <= size else gen.choice(slots, size, replace=False)
  mask = np.zeros(size, bool)
  mask[:len(pick)] = True
  return np.concatenate([pick, np.zeros(size - len(pick), pick.dtype)]), mask


def _slots(packed, user_ok, video_ok, pretrain=False) -> np.ndarray:
  """Flat indices (page * C + col) of the filled slots of the given users and videos, in the
  environment pages (or in the pretraining-only pages)."""
  first, last = ((packed.n_env_pages, packed.video.shape[0]) if pretrain
                 else (0, packed.n_env_pages))
  video = packed.video[first:last]
  ok = (video >= 0) & user_ok[packed.owner[first:last]][:, None] & video_ok[np.maximum(video, 0)]
  return np.flatnonzero(ok.ravel()) + first * packed.page_slots


def _eval_rows(gen, packed, user_ok, video_ok, size) -> EvalRows:
  flat, mask = _sample_rows(gen, _slots(packed, user_ok, video_ok), size)
  page, col = np.divmod(flat, packed.page_slots)
  return EvalRows(packed.owner[page].astype(np.int32), page.astype(np.int32),
                  col.astype(np.int32), mask)


def make_rep(config, ds, packed, rep_index: int, data_pieces: dict):
  """One repetition's RepData and its pretraining rows (page, col), on the host; with the
  set-up of the design pieces `data_pieces` (designs.data_pieces)."""
  key = prng.rep_key(config.seed, rep_index)
  has_env = packed.n_pages > 0
  split = splits_lib.split(key, len(ds.user_ids), len(ds.video_ids), config.data.user_p_val,
                           config.data.video_p_test, None if has_env.all() else has_env)
  gen = prng.numpy_rng(prng.stream(key, "eval"))
  val_rows = _eval_rows(gen, packed, split.val_user, split.test_video, config.sim.eval_rows)
  train_rows = _eval_rows(gen, packed, split.train_user, split.train_video,
                          config.sim.eval_rows)
  release, new = release_lib.draw(config, split.train_video, key)
  slots = _slots(packed, split.train_user, split.train_video & ~new, packed.pretrain_pages)
  gen = prng.numpy_rng(prng.stream(key, "pretrain_data"))
  n = config.pretrain.n_interactions
  if len(slots) < n:
    raise InputError(f"config key pretrain.n_interactions ({n:,}) exceeds the {len(slots):,} "
                     f"logged train-user x train-video {'pretraining ' * packed.pretrain_pages}"
                     f"rows of repetition {rep_index}; lower it.")
  pre = gen.choice(slots, n, replace=False)
  pre_page, pre_col = np.divmod(pre, packed.page_slots)
  # The simulation samples train users with environment rows (KuaiRec's big-matrix-only users
  # have none).
  sim_users = np.flatnonzero(split.train_user & has_env).astype(np.int32)
  user_enc = encoding.fit(ds.users, split.train_user)
  design_data = {data: piece.rep_data(ds, split.train_user, user_enc, key)
                 for data, piece in data_pieces.items()}
  rep = RepData(np.asarray(jax.random.key_data(key)), sim_users, split.train_video, user_enc,
                encoding.fit(ds.videos, split.train_video), val_rows, train_rows, design_data,
                release, sim_key_data(key, config.sim.replicate))
  pretrain_rows = EvalRows(packed.owner[pre_page].astype(np.int32), pre_page.astype(np.int32),
                           pre_col.astype(np.int32), np.ones(len(pre), bool))
  return rep, pretrain_rows


def sim_key_data(key, replicate: int) -> np.ndarray:
  return np.asarray(jax.random.key_data(prng.sim_key(key, replicate)))


def for_replicate(setup: Setup, config, replicate: int) -> Setup:
  """`setup` with the simulation draws of `replicate` (sim.replicate): the same split,
  production models and release steps, independent users, candidates and outcomes."""
  keys = np.stack([sim_key_data(prng.rep_key(config.seed, int(r)), replicate)
                   for r in setup.rep_indices])
  reps_host = setup.reps_host._replace(sim_key=keys)
  return dataclasses.replace(setup, reps_host=reps_host,
                             reps=setup.reps._replace(
                                 sim_key=parallel.shard_reps(keys, setup.mesh)))


def first_reps(setup: Setup, n: int) -> Setup:
  """`setup` of its first n repetitions (a study's sweep jobs run on fewer than its main
  point), on a mesh for n."""
  if n == len(setup.rep_indices):
    return setup
  mesh = parallel.rep_mesh(n)
  head = lambda tree: jax.tree.map(lambda x: np.asarray(x)[:n], tree)
  reps_host = head(setup.reps_host)
  return dataclasses.replace(
      setup, reps=parallel.shard_reps(reps_host, mesh), reps_host=reps_host,
      pretrain_rows=parallel.shard_reps(head(parallel.to_host(setup.pretrain_rows)), mesh),
      env=parallel.replicate(parallel.to_host(setup.env), mesh),
      rep_indices=setup.rep_indices[:n], mesh=mesh)


def build(config, modes=None, configs=None) -> Setup:
  """Loads the data and builds the device arrays and per-repetition set-up.

  The repetitions get the set-up the designs they will run need (co-diverted video arms,
  user clusters): those of `configs` (a study's jobs, each its mode under its own keys), else
  of `config` under each of `modes` (default: config.mode). The config has been checked
  (config.checks.check) by the entry point, once.
  """
  if configs is None:
    configs = [config_with_mode(config, m) for m in dict.fromkeys(modes or (config.mode,))]
  ds = dataset.load(config)
  packed = packing.pack(ds, config.data.max_history, config.data.page_slots,
                        config.data.pack_seed)
  ov = ds.overview
  log.info("dataset %s: %s users, %s videos, %s interactions (%.1f%% of the pairs), %s",
           ov["folder"], f"{ov['n_users']:,}", f"{ov['n_videos']:,}", f"{ov['n_interactions']:,}",
           100 * ov["env_density"],
           ", ".join(f"{k} {ov[k]:.4g}" for k in dataset.label_stat_keys(config)))
  if ov["n_pretrain_interactions"]:
    log.info("pretraining-only logs (%s): %s rows", ", ".join(config.data.pretrain_logs),
             f"{ov['n_pretrain_interactions']:,}")
  environments.check_data(config, ds)
  log.info("environment: %s (%s outcomes, %s retrieval)", config.sim.environment,
           config.sim.outcome, config.sim.retrieval)
  rep_indices = config.rep_offset + np.arange(config.repetitions)
  pieces = designs.data_pieces(configs, ds)
  made = [make_rep(config, ds, packed, int(r), pieces) for r in rep_indices]
  reps_host = stack([m[0] for m in made])
  n_train = int(reps_host.train_users.shape[1])
  if config.sim.batch_size > n_train:
    raise InputError(f"config key sim.batch_size ({config.sim.batch_size}) exceeds the "
                     f"{n_train} train users; lower it or data.user_p_val.")
  n_pre = int(made[0][1].user.shape[0])
  if config.pretrain.batch_size > n_pre:
    raise InputError(f"config key pretrain.batch_size ({config.pretrain.batch_size}) exceeds "
                     f"the {n_pre} pretraining rows; lower it or raise "
                     "pretrain.n_interactions.")
  n_val = int(reps_host.val_rows.mask.sum(1).min())
  if n_val == 0:
    raise InputError("no validation rows (validation users x test videos) in some "
                     "repetition: raise data.user_p_val or data.video_p_test.")
  static = make_static(ds, packed)
  log.info("features: user %d + video %d = %d wide; longest history %d slots; %d train "
           "users per repetition", static.user_layout.width, static.video_layout.width,
           static.width, packed.window, n_train)
  environments.make(config, static, n_train).log_setup(log, packed)
  models = models_lib.describe(config, static.dims)
  for name, info in models.items():
    if info["tables"]:
      log.info("model %s: %s; %s", name, info["model"], ", ".join(
          f"{t} {d['ids']:,} ids in {d['rows']:,} rows"
          + (f" (hashed, {d['collision_rate']:.2%} of ids share a row)" if d["hashed"] else "")
          for t, d in info["tables"].items()))
  mesh = parallel.rep_mesh(config.repetitions)
  log.info("%d repetitions on %d device(s) (%s)", config.repetitions,
           parallel.devices_used(mesh), jax.devices()[0].platform)
  return Setup(ds, packed, static, parallel.replicate(make_env(config, ds, packed), mesh),
               parallel.shard_reps(reps_host, mesh), reps_host,
               parallel.shard_reps(stack([m[1] for m in made]), mesh), rep_indices, mesh,
               models)


def config_with_mode(config, mode: str):
  """`config` with `mode` (the same object when it already has it)."""
  if config.mode == mode:
    return config
  c = config.copy_and_resolve_references()
  c.mode = mode
  return c


def stack(items):
  """Stacks host pytrees along a new leading (repetition) axis."""
  return jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *items)
