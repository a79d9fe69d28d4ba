"""Declared features (SPEC §2 "Features") and their raw, split-independent encoding.

Each entity (user, video) gets
  * `num`   [n, k] float32: numerical columns, missing -> 0, optional sign-preserving log1p;
  * `cat`   [n, f] int32: per categorical field, a local slot (0 missing, 1 unknown, 2+ values);
  * `multi` [n, m] int32 per multi-valued field: local slots of its values, -1 padding.
Standardization and the "seen in training" vocabulary depend on the repetition's split and are
applied by `encoding.py`.
"""

import dataclasses

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gtesim.errors import InputError

# Feature table -> entity. KuaiRand: user, video_basic, video_statistic; KuaiRec 2.0: user,
# video_daily (one row per video per date: the latest row per video is kept), video_categories.
TABLES = {"user": "user", "video_basic": "video", "video_statistic": "video",
          "video_daily": "video", "video_categories": "video"}
LATEST_BY = {"video_daily": "date"}  # Tables with several rows per id: keep the latest.
KINDS = ("numerical", "categorical", "multi_hot")
NEVER_FEATURES = ("user_id", "video_id", "author_id", "music_id", "upload_dt", "date")
MISSING, UNKNOWN = 0, 1  # Reserved local slots of every categorical field.
_FLOAT_INT = r"^(-?\d+)\.0+$"


@dataclasses.dataclass(frozen=True)
class Feature:
  table: str
  column: str
  kind: str
  log1p: bool = False

  @property
  def name(self):
    return f"{self.table}.{self.column}"


def declared_features(features_config, id_columns=()) -> list:
  """Parses `data.features` into Features, checking the declaration itself."""
  out = []
  for table, section in features_config.items():
    if table not in TABLES:
      raise InputError(f"config key data.features.{table}: unknown table; use one of "
                       f"{', '.join(TABLES)}.")
    keys = set(section.keys())
    unknown = keys - set(KINDS) - {"log1p"}
    if unknown:
      raise InputError(f"config key data.features.{table}.{sorted(unknown)[0]} does not exist;"
                       f" keys are {', '.join(KINDS)}, log1p.")
    declared = {}
    for kind in KINDS:
      for column in section.get(kind, ()):
        if column in declared:
          raise InputError(f"data.features.{table}: column '{column}' is declared both "
                           f"{declared[column]} and {kind}; declare it once.")
        if column in NEVER_FEATURES or column in id_columns:
          raise InputError(f"data.features.{table}: '{column}' is an id or date column and "
                           "cannot be a feature; remove it from the declaration.")
        declared[column] = kind
    for column in section.get("log1p", ()):
      if declared.get(column) != "numerical":
        raise InputError(f"data.features.{table}.log1p names '{column}', which is not "
                         "declared numerical in that table.")
    log1p = set(section.get("log1p", ()))
    out += [Feature(table, c, k, c in log1p) for c, k in declared.items()]
  return out


def arrow_types(features, table) -> dict:
  """Column -> Arrow type to read for the declared features of one table."""
  return {f.column: pa.float64() if f.kind == "numerical" else pa.string()
          for f in features if f.table == table}


@dataclasses.dataclass
class EntityFeatures:
  """Raw encoded features of one entity (user or video); see the module docstring."""
  num: np.ndarray
  num_names: list
  cat: np.ndarray
  cat_names: list
  cat_vocab: list  # Per categorical field, its values (slot 2 + i holds value i).
  multi: list
  multi_names: list
  multi_vocab: list
  missing: dict  # Feature name -> number of entities whose value is missing.

  @property
  def n(self):
    return self.num.shape[0]


def _normalize(strings: pa.ChunkedArray, missing_codes) -> pa.ChunkedArray:
  strings = pc.utf8_trim_whitespace(strings)
  strings = pc.replace_substring_regex(strings, _FLOAT_INT, r"\1")
  codes = [str(int(c)) if float(c).is_integer() else str(c) for c in missing_codes]
  is_missing = pc.or_(pc.equal(strings, ""), pc.is_in(strings, pa.array(codes)))
  return pc.if_else(is_missing, pa.scalar(None, pa.string()), strings)


def _slots(values: pa.ChunkedArray, vocab: pa.Array) -> np.ndarray:
  idx = pc.index_in(values, value_set=vocab)
  return pc.fill_null(pc.add(idx, UNKNOWN + 1), MISSING).to_numpy(zero_copy_only=False)


def _vocabulary(values) -> pa.Array:
  uniq = pc.unique(pc.drop_null(values))
  return pc.take(uniq, pc.sort_indices(uniq))


def extract(features, tables: dict, rows: dict, n: int, missing_codes) -> EntityFeatures:
  """Encodes one entity's declared features, split-independently.

  Args:
    features: this entity's Features.
    tables: table name -> Arrow table of its declared columns (one row per feature row).
    rows: table name -> int array, the entity index of each table row (-1: not in the logs).
    n: number of entities.
    missing_codes: numeric values that mean "missing".
  """
  num, num_names, cat, cat_names, cat_vocab = [], [], [], [], []
  multi, multi_names, multi_vocab, missing = [], [], [], {}
  for feat in features:
    column = tables[feat.table][feat.column]
    keep = rows[feat.table] >= 0
    target = rows[feat.table][keep]
    if feat.kind == "numerical":
      raw = np.full(n, np.nan)
      values = pc.fill_null(column, np.nan).to_numpy(zero_copy_only=False)[keep]
      raw[target] = values
      raw[np.isin(raw, np.asarray(missing_codes, float))] = np.nan
      if not np.all(np.isfinite(raw) | np.isnan(raw)):
        raise InputError(f"feature {feat.name}: holds inf; fix the {feat.table} table.")
      missing[feat.name] = int(np.isnan(raw).sum())
      raw = np.nan_to_num(raw, nan=0.0)
      if feat.log1p:
        raw = np.sign(raw) * np.log1p(np.abs(raw))
      num.append(raw.astype(np.float32))
      num_names.append(feat.name)
    elif feat.kind == "categorical":
      values = _normalize(column, missing_codes)
      vocab = _vocabulary(values.filter(pa.array(keep)))
      slots = np.full(n, MISSING, np.int32)
      slots[target] = _slots(values, vocab)[keep]
      missing[feat.name] = int((slots == MISSING).sum())
      cat.append(slots)
      cat_names.append(feat.name)
      cat_vocab.append(vocab.to_pylist())
    else:
      # "1,2" (KuaiRand tags) or a Python-style list "[27, 9]" (KuaiRec categories).
      text = pc.replace_substring_regex(pc.fill_null(column, ""), r"[\[\]]", "")
      lists = pc.split_pattern(text, ",").filter(pa.array(keep))
      flat = _normalize(pc.list_flatten(lists), missing_codes)
      vocab = _vocabulary(flat)
      lengths = pc.list_value_length(lists).to_numpy(zero_copy_only=False)
      flat_slots = _slots(flat, vocab)
      width = max(int(lengths.max()) if len(lengths) else 1, 1)
      slots = np.full((n, width), -1, np.int32)
      slots[:, 0] = MISSING
      owner = np.repeat(target, lengths)
      position = np.arange(len(flat_slots)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
      present = flat_slots != MISSING
      slots[owner[present], position[present]] = flat_slots[present]
      # An entity whose every value is missing keeps only the missing slot.
      has_value = np.zeros(n, bool)
      has_value[owner[present]] = True
      slots[has_value & (slots[:, 0] == MISSING), 0] = -1
      missing[feat.name] = int((~has_value).sum())
      multi.append(slots)
      multi_names.append(feat.name)
      multi_vocab.append(vocab.to_pylist())
  return EntityFeatures(
      num=np.stack(num, 1) if num else np.zeros((n, 0), np.float32), num_names=num_names,
      cat=np.stack(cat, 1) if cat else np.zeros((n, 0), np.int32), cat_names=cat_names,
      cat_vocab=cat_vocab, multi=multi, multi_names=multi_names, multi_vocab=multi_vocab,
      missing=missing)
