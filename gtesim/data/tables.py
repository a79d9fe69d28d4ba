"""Reads CSV files into Arrow tables through a columnar cache (SPEC §2 "Cache").

Only the requested columns are converted, with explicit types, batch by batch: no Python
object is built per row, so 27K's 322M log rows and multi-GB statistic tables stream through.
The cache is one Arrow IPC file per table, memory-mapped on load, keyed by the source files'
names, sizes and mtimes and by the requested columns and types.
"""

import csv
import difflib
import hashlib
import json
import os
import pathlib
import re

import pyarrow as pa
import pyarrow.csv as pa_csv

from gtesim.errors import InputError
from gtesim.io import write_json
from gtesim.logs import get_logger

log = get_logger("data")

CACHE_VERSION = 1
_BLOCK_BYTES = 64 << 20
_CONVERSION = re.compile(
    r"In CSV column #(\d+): (?:Row #(\d+): )?CSV conversion error to (\w+): invalid value '(.*)'")


def header(path: pathlib.Path) -> list:
  """Returns the column names of a CSV file (its first line)."""
  with open(path, newline="") as f:
    return next(csv.reader([f.readline()]), [])


def check_columns(path: pathlib.Path, names, what="column") -> list:
  """Raises InputError naming the file and column if a requested column is absent."""
  present = header(path)
  for name in names:
    if name not in present:
      close = difflib.get_close_matches(name, present, n=1)
      hint = f" (did you mean '{close[0]}'?)" if close else ""
      raise InputError(
          f"{path}: {what} '{name}' is not in the file{hint}. Its columns are: "
          f"{', '.join(present)}. Fix the config's declaration or the file.")
  return present


def cache_key(role, files, columns) -> str:
  """Hash of the source files' identity and the requested columns and types."""
  stats = [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]
  spec = {"version": CACHE_VERSION, "role": role, "files": stats,
          "columns": [(n, str(t)) for n, t in columns.items()]}
  return hashlib.sha256(json.dumps(spec).encode()).hexdigest()[:16]


def _stream_csv(path, columns, names, writer):
  options = pa_csv.ConvertOptions(include_columns=list(columns), column_types=columns,
                                  strings_can_be_null=True)
  rows = 0
  try:
    reader = pa_csv.open_csv(path, read_options=pa_csv.ReadOptions(block_size=_BLOCK_BYTES),
                             convert_options=options)
    for batch in reader:
      writer.write_batch(batch)
      rows += batch.num_rows
  except pa.ArrowInvalid as err:
    raise _conversion_error(path, names, err, rows) from None
  return rows


def _conversion_error(path, names, err, rows_before):
  match = _CONVERSION.search(str(err))
  if not match:
    return InputError(f"{path}: cannot be parsed as CSV ({err}). Check the file.")
  col, row, kind, value = match.groups()
  name = names[int(col)] if int(col) < len(names) else f"#{col}"
  where = f" (data row {rows_before + int(row)})" if row else f" (after data row {rows_before})"
  return InputError(
      f"{path}: column '{name}' must be numeric ({kind}) but holds '{value}'{where}. Fix the "
      "value or declare the column categorical.")


def read_table(role, files, columns: dict, cache_dir: pathlib.Path):
  """Reads `columns` (name -> Arrow type) of all `files` of a role, via the cache.

  Args:
    role: the files' role, names the cache entry (e.g. "standard").
    files: CSV paths, concatenated in this order.
    columns: column name -> Arrow type to convert to.
    cache_dir: folder for the cache files.

  Returns:
    (table with exactly `columns`, memory-mapped from the cache; rows of each file).
  """
  headers = [check_columns(f, columns) for f in files]
  cache_dir = pathlib.Path(cache_dir)
  key = cache_key(role, files, columns)
  path = cache_dir / f"{role}-{key}.arrow"
  counts_path = path.with_suffix(".rows.json")
  if not (path.exists() and counts_path.exists()):
    try:
      cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
      raise InputError(f"cannot create the cache folder {cache_dir} ({err}). Set "
                       "--config.data.cache_dir to a writable folder.") from None
    log.info("building the %s cache from %d file(s) (first load)", role, len(files))
    schema = pa.schema([(n, t) for n, t in columns.items()])
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    counts = []
    try:
      with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        for f, names in zip(files, headers):
          counts.append(_stream_csv(f, columns, names, writer))
          log.info("  %s: %s rows", f.name, f"{counts[-1]:,}")
      os.replace(tmp, path)
    finally:
      if tmp.exists():
        tmp.unlink()
    for stale in cache_dir.glob(f"{role}-*"):
      if stale not in (path, counts_path):
        stale.unlink()
    write_json(counts_path, counts)
  table = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
  return table.select(list(columns)), json.loads(counts_path.read_text())
