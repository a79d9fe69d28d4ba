"""Loads a dataset (KuaiRand or KuaiRec 2.0, real or synthetic) into index arrays and features.

The logs are the environment logs (`data.logs`: what the simulation replays, or the fully
observed matrix) and, optionally, pretraining-only logs (`data.pretrain_logs`: KuaiRec's big
matrix), whose rows only ever train the production models. A label reads a log column, or is
derived from one (`labels.<name>.threshold`: y = column >= threshold).
"""

import dataclasses
import hashlib
import json
import pathlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gtesim import label_kinds as label_kinds_lib
from gtesim.data import features as features_lib
from gtesim.data import files as files_lib
from gtesim.data import synthetic
from gtesim.data import tables
from gtesim.errors import InputError
from gtesim.logs import get_logger

log = get_logger("data")

RAND_COLUMN = "is_rand"
FORMATS = {"kuairand": "kuairand", "synthetic": "kuairand", "kuairec": "kuairec",
           "synthetic-kuairec": "kuairec"}  # data.name -> file format.


@dataclasses.dataclass
class Dataset:
  """All loaded log rows as dense indices plus the users' and videos' raw encoded features."""
  folder: pathlib.Path
  label_names: list
  label_kinds: list  # "binary" or "numerical" per label.
  user: np.ndarray  # [N] int32 dense user index of each interaction.
  video: np.ndarray  # [N] int32 dense video index.
  labels: np.ndarray  # [N, L] float32, in label_names order.
  is_rand: np.ndarray  # [N] bool: random-exposure row.
  is_env: np.ndarray  # [N] bool: an environment row (else a pretraining-only row).
  user_ids: np.ndarray  # [U] raw user ids (index -> id).
  video_ids: np.ndarray  # [V] raw video ids.
  users: features_lib.EntityFeatures
  videos: features_lib.EntityFeatures
  overview: dict


def label_kinds(config) -> dict:
  """Label name -> its kind's name (label_kinds.KINDS; a thresholded label is binary)."""
  return {n: label_kinds_lib.of(config.labels[n]).name for n in config.labels}


def _column_checks(config) -> dict:
  """Log column -> the label kind whose checks its values get: of the labels reading it, the
  least strict kind (a threshold reads a column as numerical)."""
  checks = {}
  for n in config.labels:
    label = config.labels[n]
    kind = label_kinds_lib.column_kind(label)
    if label.column not in checks or kind.strictness < checks[label.column].strictness:
      checks[label.column] = kind
  return checks


def _read_logs(config, found, fmt, cache_dir):
  """The environment and pretraining-only logs with the label columns (and is_rand, is_env)."""
  checks = _column_checks(config)
  columns = {config.data.user_id: pa.int64(), config.data.video_id: pa.int64()}
  columns.update({c: pa.float32() for c in checks})
  parts, per_file = [], {}
  roles = [(r, True) for r in config.data.logs] + [(r, False) for r in config.data.pretrain_logs]
  for role, is_env in roles:
    present = tables.header(found[role][0])
    cols = dict(columns)
    if RAND_COLUMN in present and fmt == "kuairand":
      cols[RAND_COLUMN] = pa.int8()
    table, counts = tables.read_table(role, found[role], cols, cache_dir,
                                      ids=(config.data.user_id, config.data.video_id))
    if RAND_COLUMN not in cols:
      table = table.append_column(RAND_COLUMN, pa.array(
          np.full(table.num_rows, role == "random", np.int8)))
    _check_labels(table, checks, found[role], counts)
    table = table.select(list(columns) + [RAND_COLUMN])
    parts.append(table.append_column("is_env", pa.array(np.full(table.num_rows, is_env))))
    per_file.update({f.name: c for f, c in zip(found[role], counts)})
  return pa.concat_tables(parts), per_file


# |label| above this overflows float32 squared sums: (1e15)^2 x a 10^8-row batch < 3.4e38.
LABEL_LIMIT = 1e15


def _check_labels(table, kinds: dict, files, counts):
  """Labels must be finite, and pass their kind's checks (label_kinds: binary labels 0 or 1;
  numerical labels >= 0, their heads predict log1p(y)). Errors name the file, column and
  1-based line."""
  bounds = np.cumsum(counts)
  for column, kind in kinds.items():
    values = table[column]
    checks = [(pc.or_kleene(pc.is_null(values), pc.invert(pc.is_finite(values))),
               "missing, NaN or inf value(s)", "Labels must be finite numbers"),
              (pc.greater(pc.abs(values), LABEL_LIMIT), f"value(s) beyond {LABEL_LIMIT:.0e}",
               "Sums of squared outcomes (the standard errors') are float32 on the device, "
               "where such values overflow; rescale the column (e.g. milliseconds to hours)")]
    checks += kind.value_checks(values)
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
    latest = features_lib.LATEST_BY.get(table)
    for path in kuai[table]:
      tables.check_columns(path, [id_column] + ([latest] if latest else []), what="id column")
    read = {id_column: pa.int64(), **({latest: pa.int64()} if latest else {}), **columns}
    data, _ = tables.read_table(table, kuai[table], read, cache_dir, ids=(id_column,))
    if latest:
      data = _latest_rows(data, id_column, latest)
    ids = data[id_column].to_numpy()
    rows[table] = _index(ids, known, kuai[table][0])
    feature_tables[table] = data
    n_rows[table] = (len(ids), int((rows[table] >= 0).sum()))
  own = [f for f in feats if features_lib.TABLES[f.table] == entity]
  return features_lib.extract(own, feature_tables, rows, len(known),
                              config.data.missing_codes), n_rows


def _latest_rows(data: pa.Table, id_column: str, by: str) -> pa.Table:
  """The row with the largest `by` (a date) of each id; a missing date sorts first."""
  dates = pc.fill_null(data[by], np.iinfo(np.int64).min).to_numpy()
  order = np.lexsort((dates, data[id_column].to_numpy()))
  data = data.take(pa.array(order))
  ids = data[id_column].to_numpy()
  last = np.flatnonzero(np.append(ids[1:] != ids[:-1], True))
  return data.take(pa.array(last))


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
              "pretrain_logs": list(config.data.pretrain_logs),
              "labels": [(config.labels[n].column, config.labels[n].threshold)
                         for n in config.labels]}
  text = json.dumps({"files": files, "declared": declared}, sort_keys=True, default=str)
  return hashlib.sha256(text.encode()).hexdigest()[:16]


def resolve_root(config) -> pathlib.Path:
  """The folder of CSVs the config names, generating a synthetic dataset if needed."""
  name = config.data.name
  if name == "synthetic":
    return synthetic.ensure(config.data)
  if name == "synthetic-kuairec":
    return synthetic.ensure_kuairec(config.data)
  if name not in FORMATS:
    raise InputError(f"config key data.name = '{name}': use one of {', '.join(FORMATS)}.")
  if not config.data.root:
    raise InputError(f"data.name = '{name}' needs --config.data.root=DIR, the folder of its "
                     "CSVs (see data/README.md).")
  return pathlib.Path(config.data.root)


def _stat_key(name, kind) -> str:
  return label_kinds_lib.KINDS[kind].stat_key(name)


def label_stat_keys(config) -> list:
  """Overview keys of the labels' rates (binary) and means (numerical)."""
  return [_stat_key(n, k) for n, k in label_kinds(config).items()]


def label_stats(names, kinds, labels) -> dict:
  """`<name>_rate` of binary labels and `mean_<name>` of numerical ones over some rows."""
  return {_stat_key(n, k): float(labels[:, l].astype(np.float64).mean()) if len(labels)
          else float("nan") for l, (n, k) in enumerate(zip(names, kinds))}


def _check_roles(config, fmt, feats):
  logs_roles = files_lib.LOG_ROLES[fmt]
  for key in ("logs", "pretrain_logs"):
    for role in config.data[key]:
      if role not in logs_roles:
        raise InputError(f"config key data.{key} holds '{role}'; {fmt} logs are "
                         f"{', '.join(logs_roles)}.")
  if not config.data.logs:
    raise InputError("config key data.logs is empty: name the environment logs.")
  shared = set(config.data.logs) & set(config.data.pretrain_logs)
  if shared:
    raise InputError(f"config keys data.logs and data.pretrain_logs both hold "
                     f"'{sorted(shared)[0]}'; a log is either the environment or pretraining "
                     "data.")
  for table in {f.table for f in feats}:
    if table not in files_lib.PATTERNS[fmt]:
      raise InputError(f"config key data.features.{table}: {fmt} has no such table; its "
                       f"feature tables are "
                       f"{', '.join(t for t in files_lib.PATTERNS[fmt] if t not in logs_roles)}.")


def load(config) -> Dataset:
  """Loads (through the cache) the logs and declared features the config names."""
  if config.data.name not in FORMATS:
    raise InputError(f"config key data.name = '{config.data.name}': use one of "
                     f"{', '.join(FORMATS)}.")
  fmt = FORMATS[config.data.name]
  feats = features_lib.declared_features(
      config.data.features, id_columns=(config.data.user_id, config.data.video_id))
  _check_roles(config, fmt, feats)
  root = resolve_root(config)
  needed = [t for t in features_lib.TABLES if features_lib.arrow_types(feats, t)]
  found = files_lib.find_files(
      root, tuple(config.data.logs) + tuple(config.data.pretrain_logs) + tuple(needed), fmt)
  cache_dir = pathlib.Path(config.data.cache_dir or found.folder / ".gtesim_cache")

  logs, per_file = _read_logs(config, found, fmt, cache_dir)
  is_env = logs["is_env"].to_numpy(zero_copy_only=False).astype(bool)
  if not is_env.any():
    raise InputError(f"the environment logs in {found.folder} "
                     f"({', '.join(config.data.logs)}) hold no rows, only headers: there is "
                     "nothing to simulate. Check the files.")
  raw_users = logs[config.data.user_id].to_numpy()
  raw_videos = logs[config.data.video_id].to_numpy()
  user_ids, user = _dense_index(raw_users)
  video_ids, video = _dense_index(raw_videos)
  users, user_rows = _read_entity(config, found, cache_dir, feats, "user", config.data.user_id,
                                  user_ids)
  videos, video_rows = _read_entity(config, found, cache_dir, feats, "video",
                                    config.data.video_id, video_ids)

  label_names = list(config.labels)
  kinds = label_kinds(config)
  labels = np.stack([_label_values(logs, config.labels[n]) for n in label_names], 1)
  is_rand = logs[RAND_COLUMN].to_numpy().astype(bool)
  env_user, env_video = np.unique(user[is_env]), np.unique(video[is_env])
  n_env = int(is_env.sum())
  overview = {
      "folder": str(found.folder),
      "fingerprint": _fingerprint(config, found),
      "n_users": int(len(env_user)),
      "n_videos": int(len(env_video)),
      "n_interactions": n_env,
      "env_density": n_env / (len(env_user) * len(env_video)),
      "n_random_exposure": int(is_rand.sum()),
      "n_rows_repeating_an_earlier_row": _repeated_rows(user, video, labels, is_rand),
      **label_stats(label_names, [kinds[n] for n in label_names], labels[is_env]),
      "n_pretrain_interactions": int((~is_env).sum()),
      "n_users_all_logs": int(len(user_ids)),
      "n_videos_all_logs": int(len(video_ids)),
      "rows_per_file": per_file,
      "feature_tables": {
          t: {"rows": a, "rows_in_logs": b,
              "entities_without_row": (len(user_ids) if t == "user" else len(video_ids)) - b}
          for t, (a, b) in {**user_rows, **video_rows}.items()},
  }
  return Dataset(found.folder, label_names, [kinds[n] for n in label_names], user, video,
                 labels.astype(np.float32), is_rand, is_env, user_ids, video_ids, users,
                 videos, overview)


def _label_values(logs: pa.Table, label) -> np.ndarray:
  values = logs[label.column].to_numpy()
  if label.threshold is None:
    return values
  return (values >= label.threshold).astype(np.float32)
