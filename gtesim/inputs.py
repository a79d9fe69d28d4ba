"""Everything a run loads and builds before its first step: data, device arrays, repetitions."""

import dataclasses

import jax
import numpy as np

from gtesim import clusters
from gtesim import config_check
from gtesim import device_data
from gtesim import environments
from gtesim import logs
from gtesim import parallel
from gtesim.data import dataset
from gtesim.data import packing
from gtesim.errors import InputError

log = logs.get_logger("run")


@dataclasses.dataclass
class Setup:
  """The loaded data and the per-repetition set-up, on the devices and on the host."""
  ds: dataset.Dataset
  packed: packing.Packed
  static: device_data.Static
  env: device_data.Env  # Replicated on the mesh.
  reps: device_data.RepData  # Stacked over repetitions, split over the mesh.
  reps_host: device_data.RepData  # The same on the host.
  pretrain_rows: device_data.EvalRows  # Stacked over repetitions, split over the mesh.
  rep_indices: np.ndarray  # [B] absolute repetition indices.
  mesh: jax.sharding.Mesh
  n_clusters: int  # Cluster design: number of cluster ids (else 0).

  @property
  def n_train(self) -> int:
    return int(self.reps_host.train_users.shape[1])


def build(config, modes=None) -> Setup:
  """Loads the data and builds the device arrays and per-repetition set-up.

  `modes`: every mode the Setup will run (a study runs several from one Setup); the
  repetitions get the set-up those designs need (co-diverted video arms, user clusters).
  Default: config.mode.
  """
  modes = tuple(modes or (config.mode,))
  config_check.check(config)
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
  environments.check(config, ds)
  log.info("environment: %s (%s outcomes, %s retrieval)", config.sim.environment,
           config.sim.outcome, config.sim.retrieval)
  rep_indices = config.rep_offset + np.arange(config.repetitions)
  made = [device_data.make_rep(config, ds, packed, int(r), modes) for r in rep_indices]
  reps_host = device_data.stack([m[0] for m in made])
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
  static = device_data.make_static(ds, packed)
  log.info("features: user %d + video %d = %d wide; longest history %d slots; %d train "
           "users per repetition", static.user_layout.width, static.video_layout.width,
           static.width, packed.window, n_train)
  if config.sim.retrieval == "popularity" and config.sim.environment != "latent":
    log.info("popularity retrieval scans each sampled user's whole history (%s slots for the "
             "longest): a step costs O(batch x %s); data.max_history bounds it (uniform "
             "retrieval costs the same at any length)", f"{packed.window:,}",
             f"{packed.window:,}")
  mesh = parallel.rep_mesh(config.repetitions)
  log.info("%d repetitions on %d device(s) (%s)", config.repetitions,
           parallel.devices_used(mesh), jax.devices()[0].platform)
  return Setup(ds, packed, static, parallel.replicate(device_data.make_env(config, ds, packed),
                                                     mesh),
               parallel.shard_reps(reps_host, mesh), reps_host,
               parallel.shard_reps(device_data.stack([m[1] for m in made]), mesh),
               rep_indices, mesh,
               clusters.n_clusters(config, ds) if "cluster" in modes else 0)
