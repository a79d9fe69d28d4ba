"""What the compiled step reads: the shared environment and each repetition's set-up.

`Env` holds the packed logs and raw feature tables, shared by every world and repetition.
`RepData` holds what differs per repetition (its split, fitted encoding, evaluation rows and
key); it is stacked along a leading repetition axis and vmapped over.
"""

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gtesim import clusters
from gtesim import designs
from gtesim import environments
from gtesim import rng
from gtesim.data import encoding
from gtesim.data import splits as splits_lib
from gtesim.errors import InputError


class Env(NamedTuple):
  page_video: jax.Array  # [P, C] int32, -1 empty.
  page_labels: jax.Array  # [P, C, L] float32.
  first_page: jax.Array  # [U] int32.
  n_pages: jax.Array  # [U] int32.
  page_rank: jax.Array  # [P_env] int32: each environment page's index among its user's pages.
  user_num: jax.Array
  user_cat: jax.Array
  user_multi: tuple
  video_num: jax.Array
  video_cat: jax.Array
  video_multi: tuple
  video_weight: jax.Array | None  # [V] float32 popularity retrieval weights
  # (environments.video_weights); None under uniform retrieval.
  block_cdf: jax.Array | None  # latent: two-level retrieval cdf (environments.two_level_cdf).
  within_cdf: jax.Array | None
  latent: dict | None  # latent: the latent truth (environments.latent_arrays).


class EvalRows(NamedTuple):
  user: jax.Array  # [E] int32.
  page: jax.Array  # [E] int32.
  col: jax.Array  # [E] int32.
  mask: jax.Array  # [E] bool: a real row (sets smaller than E are padded).


class RepData(NamedTuple):
  key: jax.Array  # The repetition's root key as raw key data (uint32), see rng.stream.
  train_users: jax.Array  # [n_train] int32 user indices the simulation samples from.
  train_video: jax.Array  # [V] bool.
  user_enc: dict  # encoding.fit(...) of the users.
  video_enc: dict
  val_rows: EvalRows  # Validation users x test videos.
  train_rows: EvalRows  # Train users x train videos (train-side metrics).
  user_cluster: jax.Array  # Cluster design: [U] int32 cluster of each user; else [1].
  video_u: jax.Array  # Co-diverted: [V] float32 uniforms assigning videos to arms; else [1].


@dataclasses.dataclass(frozen=True)
class Static:
  """Shapes and sizes the compiled functions are specialized on."""
  user_layout: encoding.Layout
  video_layout: encoding.Layout
  page_slots: int
  window_pages: int
  n_pages: int  # Pages of the packed logs (rows of a used mask).

  @property
  def width(self):
    return self.user_layout.width + self.video_layout.width


def make_env(config, ds, packed) -> Env:
  """The shared environment as host arrays (placed on devices by `parallel.replicate`)."""
  weights = environments.video_weights(ds, config)
  block_cdf = within_cdf = latent = None
  if config.sim.environment == "latent":
    block_cdf, within_cdf = environments.two_level_cdf(weights)
    latent = environments.latent_arrays(ds, ds.folder)
  owner = packed.owner[:packed.n_env_pages]
  page_rank = (np.arange(packed.n_env_pages) - packed.first_page[owner]).astype(np.int32)
  return Env(packed.video, packed.labels, packed.first_page, packed.n_pages, page_rank,
             ds.users.num, ds.users.cat, tuple(ds.users.multi), ds.videos.num, ds.videos.cat,
             tuple(ds.videos.multi), weights if config.sim.retrieval == "popularity" else None,
             block_cdf, within_cdf, latent)


def make_static(ds, packed) -> Static:
  return Static(encoding.Layout.of(ds.users), encoding.Layout.of(ds.videos),
                packed.page_slots, packed.window_pages, packed.n_env_pages)


def user_features(static: Static, env: Env, enc, users):
  return encoding.dense(static.user_layout, enc, env.user_num[users], env.user_cat[users],
                        [m[users] for m in env.user_multi])


def video_features(static: Static, env: Env, enc, videos):
  return encoding.dense(static.video_layout, enc, env.video_num[videos], env.video_cat[videos],
                        [m[videos] for m in env.video_multi])


def split_features(static: Static, env: Env, rep: RepData, users, videos):
  """(user features [b, du], video features [b, k, dv]) of users and their candidates: the
  halves of pair_features, the user half once per user."""
  return (user_features(static, env, rep.user_enc, users),
          video_features(static, env, rep.video_enc, videos))


def pair_features(static: Static, env: Env, rep: RepData, users, videos):
  """Feature vectors [..., d] of (user, video) pairs; `users` broadcasts against `videos`."""
  xu, xv = split_features(static, env, rep, users, videos)
  xu = jnp.broadcast_to(xu[..., None, :], xv.shape[:-1] + xu.shape[-1:]) \
      if xv.ndim > xu.ndim else xu
  return jnp.concatenate([xu, xv], axis=-1)


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


def make_rep(config, ds, packed, rep_index: int, modes=None):
  """One repetition's RepData and its pretraining rows (page, col), on the host; with the
  set-up of the designs in `modes` (default: config.mode)."""
  modes = tuple(modes or (config.mode,))
  key = rng.rep_key(config.seed, rep_index)
  has_env = packed.n_pages > 0
  split = splits_lib.split(key, len(ds.user_ids), len(ds.video_ids), config.data.user_p_val,
                           config.data.video_p_test, None if has_env.all() else has_env)
  gen = rng.numpy_rng(rng.stream(key, "eval"))
  val_rows = _eval_rows(gen, packed, split.val_user, split.test_video, config.sim.eval_rows)
  train_rows = _eval_rows(gen, packed, split.train_user, split.train_video,
                          config.sim.eval_rows)
  slots = _slots(packed, split.train_user, split.train_video, packed.pretrain_pages)
  gen = rng.numpy_rng(rng.stream(key, "pretrain_data"))
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
  user_cluster = np.zeros(1, np.int32)
  if "cluster" in modes:
    user_cluster = clusters.user_clusters(config, ds, split.train_user, user_enc, key)
  video_u = np.zeros(1, np.float32)
  if "codiverted" in modes:
    video_u = designs.video_uniforms(key, len(ds.video_ids))
  rep = RepData(np.asarray(jax.random.key_data(key)), sim_users, split.train_video, user_enc,
                encoding.fit(ds.videos, split.train_video), val_rows, train_rows, user_cluster,
                video_u)
  pretrain_rows = EvalRows(packed.owner[pre_page].astype(np.int32), pre_page.astype(np.int32),
                           pre_col.astype(np.int32), np.ones(len(pre), bool))
  return rep, pretrain_rows


def stack(items):
  """Stacks host pytrees along a new leading (repetition) axis."""
  return jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *items)
