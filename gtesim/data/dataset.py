"""Loads a dataset (KuaiRand or KuaiRec 2.0, real or synthetic) into index arrays and features.

The logs are the environment logs (`data.logs`: what the simulation replays, or the fully
observed matrix) and, optionally, pretraining-only logs (`data.pretrain_logs`: KuaiRec's big
matrix), whose rows only ever train the production models. A label reads a log column, or is
derived from one (`labels.<name>.threshold`: y = column >= threshold).

The logs are never held whole: each role's columnar cache is read in batches of at most
`BATCH_ROWS` rows, in three passes (ids and label checks; counts, rates and per-user sums;
packing, in packing.py), so the loader's memory is the packed pages plus per-user and
per-video arrays plus one batch, and 8 bytes per row for the repeated-row count, which is freed
before packing.
"""

import dataclasses
import functools
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


BATCH_ROWS = tables.BATCH_ROWS  # Log rows per batch of a pass over the logs.


@dataclasses.dataclass(frozen=True)
class LogPart:
  """One log role's rows: its cache entry and what is constant over it."""
  role: str
  files: list
  entry: tables.Cached
  is_env: bool
  has_rand: bool  # The file has the is_rand column (else every row is random iff role is).


@dataclasses.dataclass
class Rows:
  """A batch of log rows as dense indices."""
  user: np.ndarray  # [n] int32 dense user index.
  video: np.ndarray  # [n] int32 dense video index.
  labels: np.ndarray  # [n, L] float32, in label_names order.
  is_rand: np.ndarray  # [n] bool: random-exposure row.
  is_env: np.ndarray  # [n] bool: an environment row (else a pretraining-only row).


@dataclasses.dataclass(frozen=True)
class LogReader:
  """Reads the log rows in batches as dense indices."""
  parts: list  # LogPart per log role, environment logs first.
  labels: list  # The label configs, in label order.
  user_column: str
  video_column: str
  user_index: "_Ids"
  video_index: "_Ids"

  def batches(self, max_rows: int | None = None):
    """The log rows in order (environment logs, then pretraining-only ones), as Rows of at
    most `max_rows` (BATCH_ROWS) rows, each of one log role."""
    for part in self.parts:
      for batch in part.entry.batches(max_rows or BATCH_ROWS):
        yield self.rows(part, batch)

  def rows(self, part: LogPart, batch) -> Rows:
    n = batch.num_rows
    labels = np.empty((n, len(self.labels)), np.float32)
    for l, label in enumerate(self.labels):
      labels[:, l] = _label_values(batch, label)
    is_rand = (batch.column(RAND_COLUMN).to_numpy().astype(bool) if part.has_rand
               else np.full(n, part.role == "random"))
    return Rows(self.user_index(batch.column(self.user_column).to_numpy()),
                self.video_index(batch.column(self.video_column).to_numpy()), labels, is_rand,
                np.full(n, part.is_env))


@dataclasses.dataclass
class Dataset:
  """The logs (read in batches: `batches`), their per-user and per-video counts and sums, and
  the users' and videos' raw encoded features."""
  folder: pathlib.Path
  label_names: list
  label_kinds: list  # "binary" or "numerical" per label.
  user_ids: np.ndarray  # [U] raw user ids (index -> id).
  video_ids: np.ndarray  # [V] raw video ids.
  users: features_lib.EntityFeatures
  videos: features_lib.EntityFeatures
  overview: dict
  reader: LogReader
  user_rows: np.ndarray  # [U, 2] int64: the user's environment and pretraining-only rows.
  video_rows: np.ndarray  # [V] int64: rows of each video in all logs.
  pool_sums: np.ndarray  # [U, L] float64: label sums over the rows pretraining draws from
  pool_rows: np.ndarray  # [U] int64 and their count (pretraining-only rows, else all rows).

  @property
  def n_rows(self) -> int:
    return int(self.user_rows.sum())

  def batches(self, max_rows: int | None = None):
    return self.reader.batches(max_rows)

  @functools.cached_property
  def _whole(self) -> dict:
    """Every row at once, read on first use and kept (tests and small data: the package
    reads `batches`)."""
    rows = list(self.batches())
    return {f.name: np.concatenate([getattr(r, f.name) for r in rows])
            for f in dataclasses.fields(Rows)}

  user = property(lambda self: self._whole["user"])
  video = property(lambda self: self._whole["video"])
  labels = property(lambda self: self._whole["labels"])
  is_rand = property(lambda self: self._whole["is_rand"])
  is_env = property(lambda self: self._whole["is_env"])


class _Ids:
  """The distinct ids of a column, gathered batch by batch, and the dense index of any of
  them: a lookup table when the ids are non-negative and below `dense_limit` (KuaiRand's are),
  else a sorted array searched."""

  def __init__(self, dense_limit: int):
    self.limit = dense_limit
    self.present = np.zeros(0, bool)
    self.sparse = None  # Sorted distinct ids, once one is negative or past the limit.
    self.pending = []  # Each later batch's distinct ids, merged when they outgrow `sparse`.
    self.ids = self.lookup = None

  def add(self, raw: np.ndarray) -> None:
    if not len(raw):
      return
    if self.sparse is None and raw.min() >= 0 and raw.max() < self.limit:
      top = int(raw.max()) + 1
      if top > len(self.present):  # Grown geometrically: O(ids) over all batches.
        grown = np.zeros(min(max(top, 2 * len(self.present)), self.limit), bool)
        grown[:len(self.present)] = self.present
        self.present = grown
      self.present[raw] = True
      return
    if self.sparse is None:
      self.sparse = np.flatnonzero(self.present).astype(np.int64)
      self.present = None
    self.pending.append(np.unique(raw))
    if sum(map(len, self.pending)) > len(self.sparse):  # Amortised: O(ids log ids) in all.
      self._merge()

  def _merge(self) -> None:
    self.sparse = np.unique(np.concatenate([self.sparse, *self.pending]))
    self.pending = []

  def finish(self) -> np.ndarray:
    """The sorted distinct ids (index -> id)."""
    if self.sparse is None:
      self.ids = np.flatnonzero(self.present).astype(np.int64)
      self.lookup = (np.cumsum(self.present, dtype=np.int64) - 1).astype(np.int32)
      self.present = None
    else:
      self._merge()
      self.ids = self.sparse
    return self.ids

  def __call__(self, raw: np.ndarray) -> np.ndarray:
    """[n] int32 dense index of ids that are among the gathered ones."""
    if self.lookup is not None:
      return self.lookup[raw]
    return np.searchsorted(self.ids, raw).astype(np.int32)


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


def _log_parts(config, found, fmt, cache_dir) -> list:
  """The environment and pretraining-only logs' cache entries (id, label and is_rand
  columns)."""
  columns = {config.data.user_id: pa.int64(), config.data.video_id: pa.int64()}
  columns.update({c: pa.float32() for c in _column_checks(config)})
  parts = []
  roles = [(r, True) for r in config.data.logs] + [(r, False) for r in config.data.pretrain_logs]
  for role, is_env in roles:
    cols = dict(columns)
    has_rand = RAND_COLUMN in tables.header(found[role][0]) and fmt == "kuairand"
    if has_rand:
      cols[RAND_COLUMN] = pa.int8()
    entry = tables.cache_entry(role, found[role], cols, cache_dir,
                               ids=(config.data.user_id, config.data.video_id))
    parts.append(LogPart(role, list(found[role]), entry, is_env, has_rand))
  return parts


# |label| above this overflows float32 squared sums: (1e15)^2 x a 10^8-row batch < 3.4e38.
LABEL_LIMIT = 1e15


def _check_labels(table, kinds: dict, files, counts, offset: int = 0):
  """Labels must be finite, and pass their kind's checks (label_kinds: binary labels 0 or 1;
  numerical labels >= 0, their heads predict log1p(y)). Errors name the file, column and
  1-based line (`table` holds the role's rows from `offset` on)."""
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
        value = values[first].as_py()
        first += offset
        k = int(np.searchsorted(bounds, first, side="right"))
        line = first - (bounds[k - 1] if k else 0) + 2
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


def _row_hash(*columns) -> np.ndarray:
  """[n] uint64: one 64-bit hash of each row over the columns (equal rows, equal hashes;
  collisions are ~N^2 / 2^64 over N rows)."""
  h = np.zeros(len(columns[0]), np.uint64)
  for i, col in enumerate(columns):
    col = np.ascontiguousarray(col)
    words = col.view(np.uint32) if col.dtype.itemsize == 4 else col.astype(np.uint32)
    words = words.reshape(len(h), -1).astype(np.uint64)
    for j in range(words.shape[1]):
      h = (h ^ words[:, j]) * np.uint64(0x100000001B3 + 2 * (i * 8 + j))
      h ^= h >> np.uint64(29)
  return h


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


def _first_pass(config, parts) -> LogReader:
  """Pass 1 over the logs: the label checks (errors name the file and line) and the distinct
  ids; the reader of their dense indices."""
  uid, vid = config.data.user_id, config.data.video_id
  checks = _column_checks(config)
  limit = 4 * sum(p.entry.n_rows for p in parts) + 1024
  users, videos = _Ids(limit), _Ids(limit)
  for part in parts:
    offset = 0
    for batch in part.entry.batches(BATCH_ROWS):
      _check_labels(pa.Table.from_batches([batch]), checks, part.files, part.entry.counts,
                    offset)
      offset += batch.num_rows
      users.add(batch.column(uid).to_numpy())
      videos.add(batch.column(vid).to_numpy())
  users.finish()
  videos.finish()
  return LogReader(parts, [config.labels[n] for n in config.labels], uid, vid, users, videos)


def _second_pass(reader: LogReader, n_users: int, n_videos: int, n_labels: int) -> dict:
  """Pass 2: rows per user (environment, pretraining-only) and per video, label sums per user
  (all rows, pretraining-only rows) and over the environment, the environment's users and
  videos, random-exposure rows, and rows repeating an earlier row (one 64-bit hash per row,
  sorted: the pass's only per-row array)."""
  t = {"env_user": np.zeros(n_users, bool), "env_video": np.zeros(n_videos, bool),
       "user_rows": np.zeros((n_users, 2), np.int64), "video_rows": np.zeros(n_videos, np.int64),
       "sums": np.zeros((2, n_users, n_labels)), "env_label_sums": np.zeros(n_labels),
       "n_rand": 0}
  hashes = np.empty(sum(p.entry.n_rows for p in reader.parts), np.uint64)
  at = 0
  for rows in reader.batches():
    n = len(rows.user)
    hashes[at:at + n] = _row_hash(rows.user, rows.video, rows.labels, rows.is_rand)
    at += n
    t["n_rand"] += int(rows.is_rand.sum())
    # add.at: O(rows), not O(videos), per batch; and in row order, so the sums equal one
    # bincount over all rows bit for bit.
    np.add.at(t["video_rows"], rows.video, 1)
    side = 0 if rows.is_env[0] else 1  # A batch is of one log role.
    np.add.at(t["user_rows"][:, side], rows.user, 1)
    for l in range(n_labels):
      y = rows.labels[:, l].astype(np.float64)
      np.add.at(t["sums"][0, :, l], rows.user, y)
      if side:
        np.add.at(t["sums"][1, :, l], rows.user, y)
      else:
        t["env_label_sums"][l] += y.sum()
    if not side:
      t["env_user"][rows.user] = True
      t["env_video"][rows.video] = True
  hashes.sort()
  t["n_repeated"] = int(np.count_nonzero(hashes[1:] == hashes[:-1]))
  return t


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
  parts = _log_parts(config, found, fmt, cache_dir)
  if not sum(p.entry.n_rows for p in parts if p.is_env):
    raise InputError(f"the environment logs in {found.folder} "
                     f"({', '.join(config.data.logs)}) hold no rows, only headers: there is "
                     "nothing to simulate. Check the files.")
  uid, vid = config.data.user_id, config.data.video_id
  label_names = list(config.labels)
  kinds = label_kinds(config)

  reader = _first_pass(config, parts)
  user_ids, video_ids = reader.user_index.ids, reader.video_index.ids
  n_users, n_videos, n_labels = len(user_ids), len(video_ids), len(label_names)

  tally = _second_pass(reader, n_users, n_videos, n_labels)
  user_rows = tally["user_rows"]
  has_pretrain = bool(user_rows[:, 1].sum())
  sums = tally["sums"]

  users, user_tables = _read_entity(config, found, cache_dir, feats, "user", uid, user_ids)
  videos, video_tables = _read_entity(config, found, cache_dir, feats, "video", vid, video_ids)
  n_env = int(user_rows[:, 0].sum())
  n_env_users, n_env_videos = int(tally["env_user"].sum()), int(tally["env_video"].sum())
  overview = {
      "folder": str(found.folder),
      "fingerprint": _fingerprint(config, found),
      "n_users": n_env_users,
      "n_videos": n_env_videos,
      "n_interactions": n_env,
      "env_density": n_env / (n_env_users * n_env_videos),
      "n_random_exposure": tally["n_rand"],
      "n_rows_repeating_an_earlier_row": tally["n_repeated"],
      **{_stat_key(n, kinds[n]): float(tally["env_label_sums"][l] / n_env)
         for l, n in enumerate(label_names)},
      "n_pretrain_interactions": int(user_rows[:, 1].sum()),
      "n_users_all_logs": n_users,
      "n_videos_all_logs": n_videos,
      "rows_per_file": {f.name: c for part in parts
                        for f, c in zip(part.files, part.entry.counts)},
      "feature_tables": {
          t: {"rows": a, "rows_in_logs": b,
              "entities_without_row": (n_users if t == "user" else n_videos) - b}
          for t, (a, b) in {**user_tables, **video_tables}.items()},
  }
  return Dataset(found.folder, label_names, [kinds[n] for n in label_names], user_ids,
                 video_ids, users, videos, overview, reader, user_rows, tally["video_rows"],
                 sums[1] if has_pretrain else sums[0],
                 user_rows[:, 1] if has_pretrain else user_rows.sum(1))


def _label_values(logs, label) -> np.ndarray:
  values = logs.column(label.column).to_numpy()
  if label.threshold is None:
    return values
  return (values >= label.threshold).astype(np.float32)
