"""The KuaiRec 2.0 loader (the fully observed matrix's files) and derived labels."""

import json

import numpy as np
import pytest

from conftest import fixture_config, kuairand_folder, kuairec_config, kuairec_folder
from gtesim.config import defaults as default_config
from gtesim.data import dataset, packing
from gtesim.errors import InputError


def test_kuairec_loader_counts_labels_and_features(tmp_path):
  root = kuairec_folder(tmp_path)
  ds = dataset.load(kuairec_config(root))
  ov = ds.overview
  assert (ov["n_interactions"], ov["n_users"], ov["n_videos"]) == (11, 3, 4)
  assert ov["n_pretrain_interactions"] == 8 and ov["env_density"] == pytest.approx(11 / 12)
  assert set(ov["rows_per_file"]) == {"small_matrix.csv", "big_matrix.csv"}
  ratios = [0.5, 2.0, 0.0, 1.2, 3.5, 0.9, 2.4, 0.1, 1.0, 0.3, 2.2]
  assert ov["mean_watch_ratio"] == pytest.approx(np.mean(ratios), rel=1e-6)
  assert ov["long_view_rate"] == pytest.approx(4 / 11)  # watch_ratio >= 2.0.
  assert ds.label_names == ["long_view", "play_duration", "watch_ratio"]  # Sorted by name.
  assert ds.label_kinds == ["binary", "numerical", "numerical"]
  np.testing.assert_array_equal(ds.labels[:, 0], ds.labels[:, 2] >= 2.0)
  np.testing.assert_allclose(ds.labels[:, 1], np.round(ds.labels[:, 2] * 10_000))
  assert ds.is_env.sum() == 11 and not ds.is_rand.any()
  # Video 10's latest daily row (2020-07-06: show_cnt 500) wins over the earlier one (100).
  show = ds.videos.num[:, ds.videos.num_names.index("video_daily.show_cnt")]
  assert show[list(ds.video_ids).index(10)] == pytest.approx(np.log1p(500))
  # "[27, 9]" is a multi-hot of 27 and 9; "[]" has no value.
  vocab = ds.videos.multi_vocab[0]
  assert sorted(vocab, key=int) == ["4", "8", "9", "27"]
  slots = ds.videos.multi[0][list(ds.video_ids).index(10)]
  assert sorted(vocab[s - 2] for s in slots if s >= 2) == ["27", "9"]
  assert ds.videos.missing["video_categories.feat"] == 1  # Video 12.


def test_kuairec_packs_pretraining_rows_apart_from_the_environment(tmp_path):
  ds = dataset.load(kuairec_config(kuairec_folder(tmp_path)))
  packed = packing.pack(ds, 4096, 4, 0)
  env_slots = packed.video[:packed.n_env_pages]
  assert (env_slots >= 0).sum() == 11 and (packed.video[packed.n_env_pages:] >= 0).sum() == 8
  # Users 4 and 5 have only pretraining rows: no environment window.
  for uid in (4, 5):
    assert packed.n_pages[list(ds.user_ids).index(uid)] == 0


@pytest.mark.parametrize("missing", ["big_matrix.csv", "item_categories.csv"])
def test_kuairec_missing_file_is_named(tmp_path, missing):
  root = kuairec_folder(tmp_path)
  (root / "data" / missing).unlink()
  with pytest.raises(InputError, match=f"no .* file \\({missing}\\) in .*data"):
    dataset.load(kuairec_config(root))


def test_kuairec_bad_watch_ratio_names_file_column_and_line(tmp_path):
  root = kuairec_folder(tmp_path)
  path = root / "data" / "small_matrix.csv"
  lines = path.read_text().splitlines()
  lines[3] = lines[3].rsplit(",", 1)[0] + ",-0.5"
  path.write_text("\n".join(lines) + "\n")
  with pytest.raises(InputError, match=r"small_matrix.csv: label column 'watch_ratio' has 1 "
                     r"negative value.*line 4"):
    dataset.load(kuairec_config(root))


def test_kuairand_feature_table_is_refused_for_kuairec(tmp_path):
  config = kuairec_config(kuairec_folder(tmp_path))
  config.data.features.video_basic = default_config.get_config().data.features.video_basic
  with pytest.raises(InputError, match="data.features.video_basic: kuairec has no such table"):
    dataset.load(config)


def test_prepare_data_kuairec_json(tmp_path):
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  from test_cli import REPO  # pylint: disable=g-import-not-at-top
  root = kuairec_folder(tmp_path)
  out = subprocess.run([sys.executable, str(REPO / "scripts" / "prepare_data.py"), "--config",
                        str(REPO / "configs" / "kuairec.py"), f"--config.data.root={root}"],
                       capture_output=True, text=True, cwd=REPO, timeout=300)
  assert out.returncode == 0, out.stderr
  summary = json.loads(out.stdout.strip().splitlines()[-1])
  assert summary["n_interactions"] == 11 and summary["n_users"] == 3
  assert summary["n_videos"] == 4 and summary["n_pretrain_interactions"] == 8
  assert summary["long_view_rate"] == pytest.approx(4 / 11)
  assert summary["mean_watch_ratio"] == pytest.approx(1.2818182, rel=1e-5)


def test_derived_label_on_kuairand(tmp_path):
  config = fixture_config(kuairand_folder(tmp_path))
  config.labels.long_play = default_config.label("play_time_ms", "binary", "bce", 0.0, 0.0,
                                                 threshold=10_000)
  ds = dataset.load(config)
  long_play, play = ds.label_names.index("long_play"), ds.label_names.index("play_time")
  np.testing.assert_array_equal(ds.labels[:, long_play], ds.labels[:, play] >= 10_000)
  assert ds.overview["long_play_rate"] == pytest.approx(3 / 10)
