"""The embedded synthetic dataset: determinism, marginals, and signal in the features."""

import numpy as np
import pyarrow.csv as pa_csv

from conftest import tiny_synthetic_config
from gtesim.data import dataset, synthetic
from gtesim.stats.descriptive import auc


def _load(root):
  return dataset.load(tiny_synthetic_config(root))


def test_deterministic_from_seed(tmp_path):
  a = synthetic.ensure(tiny_synthetic_config(tmp_path / "a").data)
  b = synthetic.ensure(tiny_synthetic_config(tmp_path / "b").data)
  names = sorted(p.name for p in a.iterdir())
  assert names == sorted(p.name for p in b.iterdir())
  for name in names:
    assert (a / name).read_bytes() == (b / name).read_bytes(), name
  config = tiny_synthetic_config(tmp_path / "a")
  config.data.synthetic.seed = 1
  c = synthetic.ensure(config.data)
  assert (c / "user_features_tiny.csv").read_bytes() != (a / "user_features_tiny.csv").read_bytes()


def test_real_file_names_and_columns(tiny_root):
  folder = synthetic.ensure(tiny_synthetic_config(tiny_root).data)
  names = {p.name for p in folder.glob("*.csv")}
  assert names == {"log_standard_4_08_to_4_21_tiny.csv", "log_standard_4_22_to_5_08_tiny.csv",
                   "log_random_4_22_to_5_08_tiny.csv", "user_features_tiny.csv",
                   "video_features_basic_tiny.csv", "video_features_statistic_tiny.csv"}
  header = pa_csv.read_csv(folder / "log_random_4_22_to_5_08_tiny.csv").column_names
  for column in ("user_id", "video_id", "is_click", "play_time_ms", "long_view", "is_like",
                 "is_rand", "duration_ms"):
    assert column in header


def test_marginals(tiny_root):
  ds = _load(tiny_root)
  click = ds.labels[:, 0]
  play = ds.labels[:, 1]
  assert abs(click.mean() - 0.33) < 0.03
  assert 0.4 < (play == 0).mean() < 0.6  # Many zero play times.
  assert (play[click == 0] == 0).mean() > 0.6 and (play[click == 1] > 0).all()
  assert np.percentile(play[play > 0], 99) > 5 * np.median(play[play > 0])  # Heavy tail.
  history = np.bincount(ds.user)
  assert history.max() > 3 * np.median(history)  # Heavy-tailed history lengths.
  assert click[~ds.is_rand].mean() > click[ds.is_rand].mean()  # Logged exposure is biased.
  assert ds.overview["n_rows_repeating_an_earlier_row"] > 0
  assert max(ds.videos.missing.values()) > 0 and max(ds.users.missing.values()) > 0
  assert (ds.videos.multi[0] >= 0).sum(1).max() >= 2  # Multi-valued tags.


def test_latent_truth_matches_outcomes_and_features_carry_it(tiny_root):
  ds = _load(tiny_root)
  latent = synthetic.load_latent(ds.folder)
  u = np.searchsorted(latent["user_ids"], ds.user_ids)[ds.user]
  v = np.searchsorted(latent["video_ids"], ds.video_ids)[ds.video]
  expected = synthetic.expected_outcomes(latent, u, v)
  n = len(u)
  click, play = ds.labels[:, 0], ds.labels[:, 1]
  assert abs(click.mean() - expected["is_click"].mean()) < 3 * np.sqrt(0.25 / n)
  assert abs(play.mean() / expected["play_time_ms"].mean() - 1) < 0.1
  assert 0.78 < auc(expected["is_click"], click) < 0.9  # The latent truth's own AUC.
  # Video statistics reflect appeal: the logged play/show ratio tracks it.
  stats = ds.videos.num
  ratio = stats[:, ds.videos.num_names.index("video_statistic.play_cnt")] - \
      stats[:, ds.videos.num_names.index("video_statistic.show_cnt")]
  pos = np.searchsorted(latent["video_ids"], ds.video_ids)
  assert np.corrcoef(ratio, latent["appeal"][pos])[0, 1] > 0.5
