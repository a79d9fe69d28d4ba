"""The loader's passes over the logs in batches: the same dataset and pages as whole arrays
give, a uniform history cap, and memory per log row bounded at a size where it shows."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from conftest import kuairec_config, kuairec_folder, tiny_synthetic_config
from gtesim.data import dataset, packing

REPO = pathlib.Path(__file__).resolve().parents[1]


def reference_pack(user, video, labels, is_env, n_users, page_slots):
  """Pages from whole arrays, the plain way: rows grouped by user by a stable sort, the
  environment's pages first, then the pretraining-only rows'."""
  out_video, out_labels, firsts, counts = [], [], None, None
  for side in (is_env, ~is_env):
    u, v, y = user[side], video[side], labels[side]
    order = np.argsort(u, kind="stable")
    n = np.bincount(u, minlength=n_users)
    pages = -(-n // page_slots)
    first = np.cumsum(pages) - pages
    pos = np.arange(len(u)) - (np.cumsum(n) - n)[u[order]]
    vp = np.full((pages.sum(), page_slots), -1, np.int32)
    lp = np.zeros((pages.sum(), page_slots, labels.shape[1]), np.float32)
    vp[first[u[order]] + pos // page_slots, pos % page_slots] = v[order]
    lp[first[u[order]] + pos // page_slots, pos % page_slots] = y[order]
    out_video.append(vp)
    out_labels.append(lp)
    if firsts is None:
      firsts, counts = first, n
  return np.concatenate(out_video), np.concatenate(out_labels), firsts, counts


@pytest.mark.parametrize("which", ["synthetic", "kuairec"])
def test_batches_of_any_size_give_the_whole_arrays_answers(tiny_root, tmp_path, monkeypatch,
                                                           which):
  """With passes of 37 rows (the logs span hundreds of batches), every count, sum and page
  equals what whole arrays give, with and without pretraining-only rows."""
  config = (tiny_synthetic_config(tiny_root) if which == "synthetic"
            else kuairec_config(kuairec_folder(tmp_path)))
  whole = dataset.load(config)
  monkeypatch.setattr(dataset, "BATCH_ROWS", 37)
  ds = dataset.load(config)
  n_batches = sum(1 for _ in ds.batches())
  assert n_batches >= (2 if which == "kuairec" else 100)
  user, video, labels, is_env = ds.user, ds.video, ds.labels, ds.is_env
  for field in ("user_ids", "video_ids", "user_rows", "video_rows", "pool_sums", "pool_rows"):
    np.testing.assert_array_equal(getattr(ds, field), getattr(whole, field), err_msg=field)
  assert ds.overview == whole.overview
  n_users = len(ds.user_ids)
  # The counts and sums against whole arrays.
  np.testing.assert_array_equal(ds.video_rows, np.bincount(video, minlength=len(ds.video_ids)))
  np.testing.assert_array_equal(ds.user_rows[:, 0], np.bincount(user[is_env], minlength=n_users))
  pool = ~is_env if (~is_env).any() else np.ones(len(user), bool)
  np.testing.assert_array_equal(ds.pool_sums, np.stack(
      [np.bincount(user[pool], labels[pool, l].astype(np.float64), n_users)
       for l in range(labels.shape[1])], -1))
  rows = np.concatenate([user[:, None], video[:, None], labels.view(np.int32),
                         ds.is_rand[:, None]], 1)
  assert ds.overview["n_rows_repeating_an_earlier_row"] == len(rows) - len(np.unique(rows, axis=0))
  assert ds.overview["n_interactions"] == int(is_env.sum())
  # The pages against the plain rendering, and against a pack of one batch.
  packed = packing.pack(ds, 0, 4, 0)
  want_video, want_labels, first, counts = reference_pack(user, video, labels, is_env, n_users,
                                                          4)
  np.testing.assert_array_equal(packed.video, want_video)
  np.testing.assert_array_equal(packed.labels, want_labels)
  np.testing.assert_array_equal(packed.first_page, first)
  np.testing.assert_array_equal(packed.length, counts)
  monkeypatch.setattr(dataset, "BATCH_ROWS", 1 << 18)
  one = packing.pack(whole, 5, 4, 3)  # Capped: the same pages whatever the batches.
  monkeypatch.setattr(dataset, "BATCH_ROWS", 37)
  np.testing.assert_array_equal(packing.pack(ds, 5, 4, 3).video, one.video)


def test_the_history_cap_keeps_a_uniform_subset(tiny_root):
  """Over pack seeds, every row of a long history is kept at the rate max_history / rows
  (chi-square), the kept rows are the user's own, and a seed gives the same pages."""
  ds = dataset.load(tiny_synthetic_config(tiny_root))
  user, video, is_env = ds.user, ds.video, ds.is_env
  counts = ds.user_rows[:, 0]
  u = int(np.argmax(counts))
  n, m, seeds = int(counts[u]), 10, 300
  assert n >= 4 * m
  own = video[is_env & (user == u)]
  distinct, multiplicity = np.unique(own, return_counts=True)
  kept = np.zeros(len(distinct))
  for seed in range(seeds):
    packed = packing.pack(ds, m, 4, seed)
    pages = packed.first_page[u] + np.arange(packed.n_pages[u])
    got = packed.video[pages].ravel()
    got = got[got >= 0]
    assert len(got) == m and packed.length[u] == m and np.isin(got, own).all()
    kept += np.bincount(np.searchsorted(distinct, got), minlength=len(distinct))
  assert np.all(packing.pack(ds, m, 4, 7).video == packing.pack(ds, m, 4, 7).video)
  assert not np.all(packing.pack(ds, m, 4, 7).video == packing.pack(ds, m, 4, 8).video)
  # Each video is kept at the rate of its rows among the user's (repeats are separate rows).
  expected = seeds * m * multiplicity / n
  chi2 = ((kept - expected) ** 2 / expected).sum()
  assert stats.chi2.sf(chi2, len(distinct) - 1) > 1e-3, (chi2, len(distinct))


# Run in a fresh process: the load's peak heap, numpy's (tracemalloc) plus Arrow's pool's.
_MEASURE = """
import json, runpy, sys, tracemalloc
import pyarrow as pa
from gtesim.data import dataset, packing
config = runpy.run_path('configs/global.py')['get_config']()
config.data.root, config.data.synthetic.size = sys.argv[1], sys.argv[2]
tracemalloc.start()
ds = dataset.load(config)
packed = packing.pack(ds, 0, config.data.page_slots, 0)
peak = tracemalloc.get_traced_memory()[1] + pa.default_memory_pool().max_memory()
print(json.dumps({'rows': ds.n_rows, 'peak': peak}))
"""


def test_a_first_load_holds_at_most_40_bytes_per_log_row(tmp_path):
  """At the Pure-like size (2.6M rows), the first load (CSV to cache, the passes, packing)
  peaks at most 40 bytes per log row of heap (numpy's, traced, plus Arrow's pool; the process's
  resident set adds the libraries' code and allocator slack, docs/data.md). Loading whole
  arrays peaked at about 125."""
  subprocess.run([sys.executable, "-c", (
      "import runpy; from gtesim.data import synthetic; "
      "c = runpy.run_path('configs/global.py')['get_config'](); "
      f"c.data.root, c.data.synthetic.size = {str(tmp_path)!r}, 'pure'; "
      "synthetic.ensure(c.data)")], cwd=REPO, check=True)
  out = subprocess.run([sys.executable, "-c", _MEASURE, str(tmp_path), "pure"], cwd=REPO,
                       check=True, capture_output=True, text=True)
  got = json.loads(out.stdout.strip().splitlines()[-1])
  assert got["rows"] > 2_500_000
  assert got["peak"] / got["rows"] <= 40, got


@pytest.mark.parametrize("kind", ["dense", "sparse", "negative"])
def test_the_ids_gathered_in_batches_index_like_one_unique(kind):
  """Ids gathered batch by batch (a lookup table for small non-negative ids, else sorted
  distinct ids merged as they grow) give np.unique's ids and dense index."""
  gen = np.random.default_rng(0)
  high = {"dense": 500, "sparse": 10**15, "negative": 10**6}[kind]
  raw = gen.integers(-high if kind == "negative" else 0, high, 20_000)
  ids = dataset._Ids(4 * len(raw) + 1024)  # pylint: disable=protected-access
  for start in range(0, len(raw), 777):
    ids.add(raw[start:start + 777])
  want, index = np.unique(raw, return_inverse=True)
  np.testing.assert_array_equal(ids.finish(), want)
  np.testing.assert_array_equal(ids(raw), index)
  assert (ids.lookup is not None) == (kind == "dense")
