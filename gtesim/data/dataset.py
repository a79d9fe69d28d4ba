"""Loads a KuaiRand version (real or synthetic) into index arrays and encoded features."""

import dataclasses
import hashlib
import json
import pathlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gtesim.data import features as features_lib
from gtesim.data import files as files_lib
from gtesim.data import synthetic
from gtesim.data import tables
from gtesim.errors import InputError
from gtesim.logs import get_logger

log = get_logger("data")

CLICK_COLUMN, PLAY_TIME_COLUMN, RAND_COLUMN = "is_click", "play_time_ms", "is_rand"


@dataclasses.dataclass
class Dataset:
  """All loaded log rows as dense indices plus the users' and videos' raw encoded features."""
  folder: pathlib.Path
  label_names: list
  user: np.ndarray  # [N] int32 dense user index of each interaction.
  video: np.ndarray  # [N] int32 dense video index.
  labels: np.ndarray  # [N, L] float32, in label_names order.
  is_rand: np.ndarray  # [N] bool: random-exposure row.
  user_ids: np.ndarray  # [U] raw user ids (index -> id).
  video_ids: np.ndarray  # [V] raw video ids.
  users: features_lib.EntityFeatures
  videos: features_lib.EntityFeatures
  overview: dict


def _log_columns(config):
  label_columns = [config.labels[name].column for name in config.labels]
  extra = [c for c in (CLICK_COLUMN, PLAY_TIME_COLUMN) if c not in label_columns]
  return label_columns, extra


def _read_logs(config, kuai, cache_dir):
  label_columns, extra = _log_columns(config)
  columns = {config.data.user_id: pa.int64(), config.data.video_id: pa.int64()}
  columns.update({c: pa.float32() for c in label_columns + extra})
  parts, per_file = [], {}
  for role in config.data.logs:
    present = tables.header(kuai[role][0])
    cols = dict(columns)
    if RAND_COLUMN in present:
      cols[RAND_COLUMN] = pa.int8()
    table, counts = tables.read_table(role, kuai[role], cols, cache_dir)
    if RAND_COLUMN not in cols:
      table = table.append_column(RAND_COLUMN, pa.array(
          np.full(table.num_rows, role == "random", np.int8)))
    kinds = {config.labels[n].column: config.labels[n].type for n in config.labels}
    _check_labels(table, {**kinds, **{c: "other" for c in extra}}, kuai[role], counts)
    parts.append(table.select(list(columns) + [RAND_COLUMN]))
    per_file.update({f.name: c for f, c in zip(kuai[role], counts)})
  return pa.concat_tables(parts), per_file


def _check_labels(table, kinds: dict, files, counts):
  """Labels must be finite; binary labels 0 or 1; numerical labels >= 0 (their heads
  predict log1p(y)). Errors name the file, column and 1-based line."""
  bounds = np.cumsum(counts)
  for column, kind in kinds.items():
    values = table[column]
    checks = [(pc.or_kleene(pc.is_null(values), pc.invert(pc.is_finite(values))),
               "missing, NaN or inf value(s)", "Labels must be finite numbers")]
    if kind == "binary":
      checks.append((pc.invert(pc.is_in(values, pa.array([0.0, 1.0], pa.float32()))),
                     "value(s) other than 0 and 1", "A binary label must be 0 or 1"))
    elif kind == "numerical":
      checks.append((pc.less(values, 0), "negative value(s)",
                     "A numerical label must be >= 0 (its model predicts log1p of it)"))
    for bad, what, rule in checks:
      n_bad = pc.sum(bad).as_py() or 0
      if n_bad:
        first = int(pc.index(bad, True).as_py())
        k = int(np.searchsorted(bounds, first, side="right"))
        line = first - (bounds[k - 1] if k else 0) + 2
        value = values[first].as_py()
        raise InputError(
            f"{files[k]}: label column '{column}' has {n_bad} {what} (first at line {line}: "
            f"{'blank or NaN' if value is None else value}). {rule}; fix or drop those rows.")


def _index(ids: np.ndarray, known: np.ndarray, path) -> np.ndarray:
  """Entity index of each feature-table id (-1: not in the logs); ids must be unique."""
  uniq, counts = np.unique(ids, return_counts=True)
  if np.any(counts > 1):
    raise InputError(f"{path}: id {uniq[counts > 1][0]} has {counts.max()} rows; ids in a "
                     "feature table must be unique.")
  pos = np.clip(np.searchsorted(known, ids), 0, max(len(known) - 1, 0))
  return np.where((len(known) > 0) & (known[pos] == ids), pos, -1).astype(np.int64)


def _read_entity(config, kuai, cache_dir, feats, entity, id_column, known):
  feature_tables, rows, n_rows = {}, {}, {}
  for table in [t for t, e in features_lib.TABLES.items() if e == entity]:
    columns = features_lib.arrow_types(feats, table)
    if not columns:
      continue
    for path in kuai[table]:
      tables.check_columns(path, [id_column], what="id column")
    data, _ = tables.read_table(table, kuai[table], {id_column: pa.int64(), **columns},
                                cache_dir)
    ids = data[id_column].to_numpy()
    rows[table] = _index(ids, known, kuai[table][0])
    feature_tables[table] = data
    n_rows[table] = (len(ids), int((rows[table] >= 0).sum()))
  own = [f for f in feats if features_lib.TABLES[f.table] == entity]
  return features_lib.extract(own, feature_tables, rows, len(known),
                              config.data.missing_codes), n_rows


def _repeated_rows(*columns) -> int:
  """Rows equal to an earlier row in every loaded column, via one 64-bit hash per row
  (a sort of N uint64, not a hash table of whole rows; collisions are ~N^2 / 2^64)."""
  h = np.zeros(len(columns[0]), np.uint64)
  for i, col in enumerate(columns):
    col = np.ascontiguousarray(col)
    words = col.view(np.uint32) if col.dtype.itemsize == 4 else col.astype(np.uint32)
    words = words.reshape(len(h), -1).astype(np.uint64)
    for j in range(words.shape[1]):
      h = (h ^ words[:, j]) * np.uint64(0x100000001B3 + 2 * (i * 8 + j))
      h ^= h >> np.uint64(29)
  h.sort()
  return int(np.count_nonzero(h[1:] == h[:-1]))


def _dense_index(raw: np.ndarray):
  """(sorted distinct ids, int32 index of each row): a lookup table when the ids are
  non-negative and not much larger than the row count (KuaiRand's are), else a sort."""
  if len(raw) and raw.min() >= 0 and raw.max() < 4 * len(raw) + 1024:
    present = np.zeros(int(raw.max()) + 1, bool)
    present[raw] = True
    ids = np.flatnonzero(present)
    lookup = np.cumsum(present, dtype=np.int64).astype(np.int32) - 1
    return ids.astype(raw.dtype), lookup[raw]
  ids, index = np.unique(raw, return_inverse=True)
  return ids, index.astype(np.int32)


def _fingerprint(config, kuai) -> str:
  """Identity of the data a run reads: every file's name, size and mtime (as the cache keys)
  and the declared columns and labels."""
  files = [(role, f.name, f.stat().st_size, f.stat().st_mtime_ns)
           for role, fs in sorted(kuai.by_role.items()) for f in fs]
  declared = {"features": config.data.features.to_dict(), "logs": list(config.data.logs),
              "labels": [config.labels[n].column for n in config.labels]}
  text = json.dumps({"files": files, "declared": declared}, sort_keys=True, default=str)
  return hashlib.sha256(text.encode()).hexdigest()[:16]


def resolve_root(config) -> pathlib.Path:
  """The folder of CSVs the config names, generating the synthetic dataset if needed."""
  if config.data.name == "synthetic":
    return synthetic.ensure(config.data)
  if config.data.name != "kuairand":
    raise InputError(f"config key data.name = '{config.data.name}': use 'synthetic' or "
                     "'kuairand'.")
  if not config.data.root:
    raise InputError("data.name = 'kuairand' needs --config.data.root=DIR, the folder of the "
                     "KuaiRand CSVs (see data/README.md).")
  return pathlib.Path(config.data.root)


def load(config) -> Dataset:
  """Loads (through the cache) the logs and declared features the config names."""
  for role in config.data.logs:
    if role not in files_lib.LOG_ROLES:
      raise InputError(f"config key data.logs holds '{role}'; use 'standard' and/or 'random'.")
  feats = features_lib.declared_features(
      config.data.features, id_columns=(config.data.user_id, config.data.video_id))
  root = resolve_root(config)
  needed = [t for t in features_lib.TABLES if features_lib.arrow_types(feats, t)]
  kuai = files_lib.find_files(root, tuple(config.data.logs) + tuple(needed))
  cache_dir = pathlib.Path(config.data.cache_dir or kuai.folder / ".gtesim_cache")

  logs, per_file = _read_logs(config, kuai, cache_dir)
  if logs.num_rows == 0:
    raise InputError(f"the logs in {kuai.folder} ({', '.join(per_file)}) hold no rows, only "
                     "headers: there is nothing to simulate. Check the files.")
  raw_users = logs[config.data.user_id].to_numpy()
  raw_videos = logs[config.data.video_id].to_numpy()
  user_ids, user = _dense_index(raw_users)
  video_ids, video = _dense_index(raw_videos)
  users, user_rows = _read_entity(config, kuai, cache_dir, feats, "user", config.data.user_id,
                                  user_ids)
  videos, video_rows = _read_entity(config, kuai, cache_dir, feats, "video",
                                    config.data.video_id, video_ids)

  label_names = list(config.labels)
  labels = np.stack([logs[config.labels[n].column].to_numpy() for n in label_names], 1)
  is_rand = logs[RAND_COLUMN].to_numpy().astype(bool)
  n = logs.num_rows
  overview = {
      "folder": str(kuai.folder),
      "fingerprint": _fingerprint(config, kuai),
      "n_users": int(len(user_ids)),
      "n_videos": int(len(video_ids)),
      "n_interactions": int(n),
      "n_random_exposure": int(is_rand.sum()),
      "n_rows_repeating_an_earlier_row": _repeated_rows(user, video, labels, is_rand),
      "click_rate": float(pc.mean(logs[CLICK_COLUMN]).as_py()),
      "mean_play_time_ms": float(pc.mean(logs[PLAY_TIME_COLUMN].cast(pa.float64())).as_py()),
      "rows_per_file": per_file,
      "feature_tables": {
          t: {"rows": a, "rows_in_logs": b,
              "entities_without_row": (len(user_ids) if t == "user" else len(video_ids)) - b}
          for t, (a, b) in {**user_rows, **video_rows}.items()},
  }
  return Dataset(kuai.folder, label_names, user, video,
                 labels.astype(np.float32), is_rand, user_ids, video_ids, users, videos,
                 overview)

