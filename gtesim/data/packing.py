"""Packs interactions into per-user pages for the device (SPEC §2 "On the device").

Layout ("pages"): a user's interactions fill consecutive pages of `data.page_slots` (C) slots:
`video` [P, C] int32 (-1 = empty slot) and `labels` [P, C, L] float32, with `first_page` [U]
and `n_pages` [U]. Memory grows with the interactions, not with users x longest history: the
padding is under C slots per user. Each world x repetition adds a `used` mask [P, C] bool and,
under uniform retrieval, Fenwick trees of eligible slots per page [classes, P] int32
(slot_sampler.py), whose draws cost O(log R + C) per candidate whatever the history length.
Popularity-weighted retrieval reads a user as a window of R = max pages pages (R*C slots,
masked past the user's own), O(batch x R x C) per step.

By default every row is kept (`data.max_history = 0`), in log order within each user. A
positive `data.max_history` keeps that many interactions of longer histories: each such user's
rows are ranked by a uniformly random permutation (`data.pack_seed`; users in index order) and
the first max_history kept, in that order; the count of dropped rows is logged.

Packing streams the logs (Dataset.batches): each row goes straight to its slot, its place
within its user counted by a cursor per user, so nothing per row is held but the pages (and,
under a cap, 4 bytes per row of the capped users: their permutations).

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


def _layout(counts, max_history: int, page_slots: int):
  """(kept rows [U], pages [U], first page [U]) of users with `counts` rows."""
  length = np.minimum(counts, max_history).astype(np.int32)
  n_pages = (-(-length // page_slots)).astype(np.int32)
  first_page = (np.cumsum(n_pages) - n_pages).astype(np.int32)
  return length, n_pages, first_page


def _ranks_in_batch(user: np.ndarray) -> np.ndarray:
  """[n] each row's place among the batch's earlier rows of its user."""
  order = np.argsort(user, kind="stable")
  sorted_user = user[order]
  starts = np.flatnonzero(np.r_[True, sorted_user[1:] != sorted_user[:-1]])
  sizes = np.diff(np.r_[starts, len(user)])
  rank = np.empty(len(user), np.int64)
  rank[order] = np.arange(len(user)) - np.repeat(starts, sizes)
  return rank


def pack(ds: Dataset, max_history: int, page_slots: int, seed: int) -> Packed:
  """Groups the interactions by user into pages (see the module docstring); max_history = 0
  keeps every row."""
  n_users, n_labels = len(ds.user_ids), len(ds.label_names)
  env_counts, pre_counts = ds.user_rows[:, 0], ds.user_rows[:, 1]
  max_history = max_history or max(int(env_counts.sum()), 1)
  length, n_pages, first_page = _layout(env_counts, max_history, page_slots)
  _, pre_pages, pre_first = _layout(pre_counts, max(int(pre_counts.max(initial=0)), 1),
                                    page_slots)
  n_env_pages = int(n_pages.sum())
  pre_first = pre_first + n_env_pages
  n_total = n_env_pages + int(pre_pages.sum())
  video = np.full((n_total, page_slots), -1, np.int32)
  labels = np.zeros((n_total, page_slots, n_labels), np.float32)
  flat_video, flat_labels = video.reshape(-1), labels.reshape(-1, n_labels)

  capped = np.flatnonzero(env_counts > max_history)
  cap_start = np.zeros(n_users, np.int64)  # Where a capped user's permutation starts.
  cap_start[capped] = np.cumsum(env_counts[capped]) - env_counts[capped]
  rng = np.random.default_rng(seed)
  perm = (np.concatenate([rng.permutation(int(env_counts[u])) for u in capped])
          .astype(np.int32) if len(capped) else np.zeros(0, np.int32))
  is_capped = env_counts > max_history

  cursor = np.zeros((2, n_users), np.int64)
  for rows in ds.batches():
    side = 0 if rows.is_env[0] else 1  # A batch is of one log role.
    place = cursor[side][rows.user] + _ranks_in_batch(rows.user)
    np.add.at(cursor[side], rows.user, 1)
    if side:
      slot = pre_first[rows.user].astype(np.int64) * page_slots + place
    else:
      cap = is_capped[rows.user]
      place[cap] = perm[cap_start[rows.user[cap]] + place[cap]]
      keep = place < max_history
      slot = first_page[rows.user].astype(np.int64) * page_slots + place
      slot, rows.video, rows.labels = slot[keep], rows.video[keep], rows.labels[keep]
    flat_video[slot] = rows.video
    flat_labels[slot] = rows.labels
  n_dropped = int((env_counts - length).sum())
  if n_dropped:
    log.info("%d users have more than %d interactions: kept %d of each at random, dropping "
             "%s of %s interactions (%.2f%%)", len(capped), max_history, max_history,
             f"{n_dropped:,}", f"{int(env_counts.sum()):,}",
             100 * n_dropped / env_counts.sum())
  owner = np.concatenate([np.repeat(np.arange(n_users), n_pages),
                          np.repeat(np.arange(n_users), pre_pages)]).astype(np.int32)
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
