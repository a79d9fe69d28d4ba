"""Packs interactions into per-user pages for the device (SPEC §2 "On the device").

Layout ("pages"): a user's interactions fill consecutive pages of `data.page_slots` (C) slots:
`video` [P, C] int32 (-1 = empty slot) and `labels` [P, C, L] float32, with `first_page` [U]
and `n_pages` [U]. Memory grows with the interactions, not with users x longest history: the
padding is under C slots per user. Each world x repetition adds a `used` mask [P, C] bool and,
under uniform retrieval, Fenwick trees of eligible slots per page [classes, P] int32
(slot_sampler.py), whose draws cost O(log R + C) per candidate whatever the history length.
Popularity-weighted retrieval reads a user as a window of R = max pages pages (R*C slots,
masked past the user's own), O(batch x R x C) per step.

By default every row is kept (`data.max_history = 0`). A positive `data.max_history` keeps
that many interactions of longer histories, drawn uniformly at random (`data.pack_seed`); the
count of dropped rows is logged.

Pretraining-only rows (KuaiRec's big matrix) are packed the same way into pages after the
environment's (`n_env_pages` onwards, no cap): pretraining reads them, the simulation's windows
and used masks cover only the environment pages.
"""

import dataclasses

import numpy as np

from gtesim.data import encoding
from gtesim.data.dataset import Dataset
from gtesim.logs import get_logger

log = get_logger("pack")


@dataclasses.dataclass
class Packed:
  video: np.ndarray  # [P, C] int32 video index, -1 for an empty slot.
  labels: np.ndarray  # [P, C, L] float32.
  first_page: np.ndarray  # [U] int32.
  n_pages: np.ndarray  # [U] int32.
  length: np.ndarray  # [U] int32 interactions kept per user.
  n_dropped: int  # Interactions dropped by the max_history cap.
  owner: np.ndarray  # [P] int32 user of each page.
  n_env_pages: int  # Pages [0, n_env_pages) hold the environment; the rest pretraining rows.

  @property
  def pretrain_pages(self) -> bool:
    """Whether pretraining reads its own pages (else the environment's)."""
    return self.n_env_pages < self.video.shape[0]

  @property
  def page_slots(self):
    return self.video.shape[1]

  @property
  def window_pages(self):
    """R: pages in every user's window (the longest user's page count)."""
    return int(self.n_pages.max(initial=1))

  @property
  def window(self):
    return self.window_pages * self.page_slots

  def bytes_per_slot(self) -> int:
    """Shared device bytes per slot: video index + labels (each world x repetition adds a
    one-byte used flag)."""
    return 4 + 4 * self.labels.shape[2]

  def nbytes(self) -> int:
    return (self.video.size * self.bytes_per_slot() + self.first_page.nbytes +
            self.n_pages.nbytes + self.length.nbytes + self.owner.nbytes)


def window_index(first_page, n_pages, page_slots, window_pages, users):
  """Page ids [.., R] and valid-page mask of some users' windows (numpy or jnp inputs)."""
  offsets = np.arange(window_pages)
  pages = first_page[users][..., None] + offsets
  valid = offsets < n_pages[users][..., None]
  return pages, valid


def _pack_rows(user, video, labels, n_users, max_history, page_slots, seed):
  counts = np.bincount(user, minlength=n_users)
  if counts.max(initial=0) > max_history:
    noise = np.random.default_rng(seed).random(len(user))
    order = np.lexsort((noise, user))
  else:
    order = np.argsort(user, kind="stable")
  starts = np.cumsum(counts) - counts
  user_sorted = user[order]
  position = np.arange(len(order)) - starts[user_sorted]
  keep = position < max_history
  length = np.minimum(counts, max_history).astype(np.int32)
  n_pages = (-(-length // page_slots)).astype(np.int32)
  first_page = (np.cumsum(n_pages) - n_pages).astype(np.int32)
  rows, cols, src = user_sorted[keep], position[keep], order[keep]
  page = first_page[rows] + cols // page_slots
  n_total = int(n_pages.sum())
  video_pages = np.full((n_total, page_slots), -1, np.int32)
  video_pages[page, cols % page_slots] = video[src]
  label_pages = np.zeros((n_total, page_slots, labels.shape[1]), np.float32)
  label_pages[page, cols % page_slots] = labels[src]
  n_dropped = int((~keep).sum())
  if n_dropped:
    log.info("%d users have more than %d interactions: kept %d of each at random, dropping "
             "%s of %s interactions (%.2f%%)", int((counts > max_history).sum()), max_history,
             max_history, f"{n_dropped:,}", f"{len(order):,}", 100 * n_dropped / len(order))
  owner = np.repeat(np.arange(n_users), n_pages).astype(np.int32)
  return video_pages, label_pages, first_page, n_pages, length, n_dropped, owner


def pack(ds: Dataset, max_history: int, page_slots: int, seed: int) -> Packed:
  """Groups the interactions by user into pages (see the module docstring); max_history = 0
  keeps every row."""
  n_users = len(ds.user_ids)
  env = ds.is_env
  max_history = max_history or max(int(env.sum()), 1)
  video, labels, first_page, n_pages, length, n_dropped, owner = _pack_rows(
      ds.user[env], ds.video[env], ds.labels[env], n_users, max_history, page_slots, seed)
  n_env_pages = video.shape[0]
  if not env.all():
    pre_video, pre_labels, _, _, _, _, pre_owner = _pack_rows(
        ds.user[~env], ds.video[~env], ds.labels[~env], n_users, len(env), page_slots, seed)
    video = np.concatenate([video, pre_video])
    labels = np.concatenate([labels, pre_labels])
    owner = np.concatenate([owner, pre_owner])
  return Packed(video, labels, first_page, n_pages, length, n_dropped, owner, n_env_pages)


def memory_report(ds: Dataset, packed: Packed) -> dict:
  """Bytes of the packed arrays and the feature tables, for the overview."""
  feature_bytes = sum(a.nbytes for f in (ds.users, ds.videos) for a in [f.num, f.cat, *f.multi])
  return {
      "page_slots": packed.page_slots,
      "window_slots": packed.window,
      "slot_fill": float(np.mean(packed.video >= 0)),
      "bytes_per_slot": packed.bytes_per_slot(),
      "bytes_per_interaction": packed.nbytes() / max(int(np.sum(packed.video >= 0)), 1),
      "packed_bytes": packed.nbytes(),
      "used_mask_bytes_per_world": packed.n_env_pages * packed.page_slots,
      "feature_table_bytes": int(feature_bytes),
      "user_feature_width": encoding.Layout.of(ds.users).width,
      "video_feature_width": encoding.Layout.of(ds.videos).width,
      "dropped_by_cap": packed.n_dropped,
  }
