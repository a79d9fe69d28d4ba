"""Loading KuaiRand-format folders: counts, quirks, encoding, bad input."""

import gzip
import importlib.resources
import shutil

import numpy as np
import pytest

from conftest import fixture_config, kuairand_folder, write, LOG_HEADER
from gtesim.data import dataset, encoding, features, packing, splits
from gtesim import prng
from gtesim.errors import InputError


@pytest.mark.parametrize("parts", [False, True])
def test_counts_equal_file_rows_and_duplicates_are_kept(tmp_path, parts):
  ds = dataset.load(fixture_config(kuairand_folder(tmp_path, "27k" if parts else "pure", parts)))
  ov = ds.overview
  assert ov["n_interactions"] == 10 and sum(ov["rows_per_file"].values()) == 10
  assert ov["n_users"] == 4 and ov["n_videos"] == 4
  assert ov["n_random_exposure"] == 3 and ds.is_rand.sum() == 3
  assert ov["n_rows_repeating_an_earlier_row"] == 1
  assert ov["click_rate"] == pytest.approx(5 / 10)
  assert ov["mean_play_time"] == pytest.approx(67500 / 10)
  assert list(ds.user_ids) == [10, 11, 12, 13] and list(ds.video_ids) == [100, 101, 102, 103]
  assert ov["feature_tables"]["user"] == {"rows": 4, "rows_in_logs": 3, "entities_without_row": 1}


def test_quirks_numerical_encoding(tmp_path):
  ds = dataset.load(fixture_config(kuairand_folder(tmp_path)))
  u = ds.users
  assert u.num_names == ["user.follow_user_num", "user.register_days"]
  np.testing.assert_allclose(u.num[:, 0], np.log1p([514, 457, 8, 0]), rtol=1e-6)
  np.testing.assert_allclose(u.num[:, 1], [799, 1474, 231, 0])  # User 13: no row -> 0.
  v = ds.videos
  dur = v.num[:, v.num_names.index("video_basic.video_duration")]
  np.testing.assert_allclose(dur, np.log1p([87433, 0, 9233, 0]), rtol=1e-6)  # Blank -> 0.
  # follow_user_num of the statistic table is a separate video feature.
  np.testing.assert_allclose(v.num[:, v.num_names.index("video_statistic.follow_user_num")],
                             [3, 0, 1, 0])
  assert v.missing["video_statistic.play_cnt"] == 2  # Blank + video without a row.


def test_quirks_categorical_and_multi_hot(tmp_path):
  config = fixture_config(kuairand_folder(tmp_path))
  config.data.features.video_basic.multi_hot = ("tag",)
  ds = dataset.load(config)
  u = ds.users
  live = u.cat[:, u.cat_names.index("user.is_live_streamer")]
  assert list(live) == [features.MISSING, 2, features.MISSING, features.MISSING]  # -124, 1, -124, none
  feat4 = u.cat_vocab[u.cat_names.index("user.onehot_feat4")]
  assert feat4 == ["1", "4"]  # "1.0" read as "1"; user 99 (not in the logs) adds no "2".
  degree = u.cat_vocab[u.cat_names.index("user.user_active_degree")]
  assert "UNKNOWN" in degree  # UNKNOWN is a category, not missing.
  v = ds.videos
  assert v.cat_vocab[v.cat_names.index("video_basic.music_type")] == ["4", "9"]
  tags = v.multi[0]
  vocab = v.multi_vocab[0]
  slot = {t: vocab.index(t) + 2 for t in vocab}
  assert list(tags[0][tags[0] >= 0]) == [slot["39"]]
  assert sorted(tags[1][tags[1] >= 0]) == sorted([slot["20"], slot["43"]])
  assert list(tags[2][tags[2] >= 0]) == [features.MISSING]  # Blank tag -> missing.
  assert list(tags[3][tags[3] >= 0]) == [features.MISSING]  # No feature row -> missing.


def test_standardization_uses_training_entities_only_and_unseen_maps_to_unknown(tmp_path):
  ds = dataset.load(fixture_config(kuairand_folder(tmp_path)))
  train = np.array([True, True, False, False])
  params = encoding.fit(ds.users, train)
  np.testing.assert_allclose(params["mean"], ds.users.num[:2].mean(0), rtol=1e-6)
  layout = encoding.Layout.of(ds.users)
  x = np.asarray(encoding.dense(layout, params, ds.users.num, ds.users.cat, ds.users.multi))
  assert x.shape == (4, layout.width)
  np.testing.assert_allclose(x[:2, :2].mean(0), 0, atol=1e-5)
  j = ds.users.cat_names.index("user.user_active_degree")
  start = layout.n_num + sum(layout.cat_widths[:j])
  block = x[:, start:start + layout.cat_widths[j]]
  np.testing.assert_array_equal(block.sum(1), 1)  # One indicator per field.
  # User 12's UNKNOWN degree was not seen among training users -> the unknown slot.
  assert block[2, features.UNKNOWN] == 1
  assert block[0, ds.users.cat[0, j]] == 1


def test_vendored_real_tables_show_documented_quirks(tmp_path):
  """The real KuaiRand-Pure feature tables through the loader (SPEC §2 quirks)."""
  folder = tmp_path / "real"
  for name in ("user_features_pure.csv", "video_features_basic_pure.csv"):
    src = importlib.resources.files("gtesim") / "assets" / "kuairand_pure" / f"{name}.gz"
    with gzip.open(src) as f_in, open(write(folder / name, ""), "wb") as f_out:
      shutil.copyfileobj(f_in, f_out)
  users = np.arange(27285)
  logs = "\n".join([LOG_HEADER] + [f"{u},{u % 7583},20220408,{u % 2},0,0,{u},1000,0,1"
                                   for u in users]) + "\n"
  write(folder / "log_standard_4_08_to_4_21_pure.csv", logs)
  write(folder / "log_random_4_22_to_5_08_pure.csv",
        LOG_HEADER + "\n0,0,20220422,1,0,0,5,1000,1,1\n")
  write(folder / "video_features_statistic_pure.csv", "video_id,show_cnt\n0,1\n")
  config = fixture_config(folder)
  config.data.features.user.categorical = ("user_active_degree", "is_live_streamer",
                                           "onehot_feat4", "onehot_feat12")
  config.data.features.video_basic.categorical = ("video_type", "upload_type", "music_type",
                                                  "visible_status")
  config.data.features.video_basic.multi_hot = ("tag",)
  config.data.features.video_basic.numerical = ("video_duration", "server_width",
                                                "server_height")
  config.data.features.video_statistic.numerical = ("show_cnt",)
  config.data.features.video_statistic.log1p = ()
  ds = dataset.load(config)
  m = {**ds.users.missing, **ds.videos.missing}
  assert m["user.is_live_streamer"] == 21127
  assert m["user.onehot_feat4"] == 874 and m["user.onehot_feat12"] == 714
  assert m["video_basic.video_duration"] == 239 and m["video_basic.music_type"] == 203
  assert m["video_basic.tag"] == 96
  vocab = dict(zip(ds.videos.cat_names, ds.videos.cat_vocab))
  assert vocab["video_basic.visible_status"] == ["0"]  # "0.0" read as an integer category.
  assert vocab["video_basic.video_type"] == ["AD", "NORMAL", "UNKNOWN"]
  assert len(vocab["video_basic.upload_type"]) == 14
  assert set(ds.videos.multi_vocab[0]) == {str(i) for i in range(1, 69)} & set(
      ds.videos.multi_vocab[0]) and len(ds.videos.multi_vocab[0]) <= 68
  assert ds.users.cat_vocab[ds.users.cat_names.index("user.user_active_degree")] == sorted(
      ["full_active", "high_active", "middle_active", "2_14_day_new", "low_active",
       "single_low_active", "30day_retention", "day_new", "UNKNOWN"])


@pytest.mark.parametrize("value, message", [
    ("nan", r"'play_time_ms' has 1 missing, NaN or inf value\(s\) \(first at line 3: blank or "
            r"NaN\)"),
    # Near 1e20 the float32 sums of squares (Welch, user SEs) were inf and the SEs null.
    ("1e20", r"'play_time_ms' has 1 value\(s\) beyond 1e\+15 \(first at line 3: "
             r"1\.0000000\d*e\+20\)\. Sums of squared outcomes .* rescale the column")])
def test_a_bad_label_is_refused_with_file_and_row(tmp_path, value, message):
  root = kuairand_folder(tmp_path)
  path = root / "data" / "log_standard_4_22_to_5_08_pure.csv"
  path.write_text(path.read_text().replace("12,101,20220423,1,0,0,4000",
                                           f"12,101,20220423,1,0,0,{value}"))
  with pytest.raises(InputError, match=r"log_standard_4_22_to_5_08_pure.csv: label column "
                     + message):
    dataset.load(fixture_config(root))


def test_declared_feature_absent_from_table(tmp_path):
  config = fixture_config(kuairand_folder(tmp_path))
  config.data.features.user.categorical = ("user_active_degre",)
  with pytest.raises(InputError, match=r"user_features_pure.csv: column 'user_active_degre' is "
                     r"not in the file \(did you mean 'user_active_degree'\?\)"):
    dataset.load(config)


@pytest.mark.parametrize("column", ["user_id", "upload_dt"])
def test_ids_and_dates_are_never_features(tmp_path, column):
  config = fixture_config(kuairand_folder(tmp_path))
  config.data.features.video_basic.categorical = (column,)
  with pytest.raises(InputError, match="cannot be a feature"):
    dataset.load(config)


def test_packing_keeps_every_interaction_once(tmp_path):
  ds = dataset.load(fixture_config(kuairand_folder(tmp_path)))
  packed = packing.pack(ds, max_history=100, page_slots=2, seed=0)
  assert packed.n_dropped == 0 and packed.window_pages == 2
  got = []
  for u in range(4):
    pages, valid = packing.window_index(packed.first_page, packed.n_pages, 2, 2, np.array([u]))
    vids = packed.video[pages[0][valid[0]]].ravel()
    labs = packed.labels[pages[0][valid[0]]].reshape(-1, 2)
    got += [(u, v, *l) for v, l in zip(vids, labs) if v >= 0]
  want = [(u, v, *l) for u, v, l in zip(ds.user, ds.video, ds.labels)]
  assert sorted(got) == sorted(want)


def test_packing_cap_subsamples_and_counts(tmp_path):
  ds = dataset.load(fixture_config(kuairand_folder(tmp_path)))
  packed = packing.pack(ds, max_history=2, page_slots=4, seed=0)
  assert packed.n_dropped == 10 - 2 - 2 - 2 - 2 and packed.length.max() == 2
  assert (packed.video >= 0).sum() == 8


def test_splits_sizes_and_determinism():
  a = splits.split(prng.rep_key(0, 3), 100, 50, 0.1, 0.2)
  b = splits.split(prng.rep_key(0, 3), 100, 50, 0.1, 0.2)
  c = splits.split(prng.rep_key(0, 4), 100, 50, 0.1, 0.2)
  assert a.val_user.sum() == 10 and (~a.train_video).sum() == 10
  np.testing.assert_array_equal(a.train_user, b.train_user)
  assert not np.array_equal(a.train_user, c.train_user)
  none = splits.split(prng.rep_key(0, 3), 100, 50, 0.1, 0.0)
  assert none.train_video.all() and none.test_video.all()
