"""Reads CSV files into Arrow tables through a columnar cache (SPEC §2 "Cache").

Only the requested columns are converted, with explicit types, batch by batch: no Python
object is built per row, so 27K's 322M log rows and multi-GB statistic tables stream through.
The cache is one Arrow IPC file per table, keyed by the source files' names, sizes and mtimes
and by the requested columns and types: a feature table is memory-mapped whole, a log is read
batch by batch (Cached.batches), so that loading never holds all its rows at once.
"""

import csv
import dataclasses
import difflib
import hashlib
import json
import pathlib
import re
import zlib

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from gtesim.errors import InputError, one_line
from gtesim.writing import atomic_path, build_lock, write_json
from gtesim.logs import get_logger

log = get_logger("data")

CACHE_VERSION = 3  # 3: record batches of at most BATCH_ROWS rows.
_BLOCK_BYTES = 1 << 20  # CSV text per block: the streaming reader holds some tens of blocks.
BATCH_ROWS = 1 << 18  # Rows per record batch of a cache file (what a pass reads at once).
_CONVERSION = re.compile(
    r"In CSV column #(\d+): (?:Row #(\d+): )?CSV conversion error to (\w+): invalid value '(.*)'")


def header(path: pathlib.Path) -> list:
  """Returns the column names of a CSV file (its first line; a UTF-8 BOM is dropped)."""
  if path.stat().st_size == 0:
    raise InputError(f"{path}: the file is empty (0 bytes, not even a header line). Restore "
                     "it from the dataset's download.")
  try:
    with open(path, newline="", encoding="utf-8-sig") as f:
      return next(csv.reader([f.readline()]), [])
  except UnicodeDecodeError as err:
    raise InputError(f"{path}: the header line is not UTF-8 text (byte 0x"
                     f"{err.object[err.start]:02x} at position {err.start}). Save the file as "
                     "UTF-8 CSV.") from None


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


def _stream_csv(path, columns, names, writer, ids=()):
  options = pa_csv.ConvertOptions(include_columns=list(columns), column_types=columns,
                                  strings_can_be_null=True)
  rows = 0
  try:
    reader = pa_csv.open_csv(path, read_options=pa_csv.ReadOptions(block_size=_BLOCK_BYTES),
                             convert_options=options)
    for batch in reader:
      for start in range(0, batch.num_rows, BATCH_ROWS):
        writer.write_batch(batch.slice(start, BATCH_ROWS))
      rows += batch.num_rows
  except pa.ArrowInvalid as err:
    raise _conversion_error(path, names, err, ids) from None
  return rows


_NUMBER = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$|^\s*[-+]?(inf|nan)\s*$"


def first_non_numeric(path, column) -> tuple:
  """(1-based file line, value) of the first non-empty value of `column` that is not a
  number, reading that one column as text in batches."""
  options = pa_csv.ConvertOptions(include_columns=[column], column_types={column: pa.string()},
                                  strings_can_be_null=True)
  rows = 0
  for batch in pa_csv.open_csv(path, read_options=pa_csv.ReadOptions(block_size=_BLOCK_BYTES),
                               convert_options=options):
    values = batch.column(0)
    ok = pc.or_kleene(pc.is_null(values),
                      pc.match_substring_regex(values, _NUMBER, ignore_case=True))
    bad = pc.invert(pc.fill_null(ok, True))
    if pc.any(bad).as_py():
      i = pc.index(bad, True).as_py()
      return rows + i + 2, values[i].as_py()
    rows += batch.num_rows
  return None, None


def first_bad_row(path):
  """(1-based file line, expected and found column counts, text) of the first line whose
  field count is not the header's, or None: one single-threaded pass, which knows line
  numbers (the threaded reader does not)."""
  found = []

  def record(row):
    found.append(row)
    return "error"

  try:
    for _ in pa_csv.open_csv(path, read_options=pa_csv.ReadOptions(block_size=_BLOCK_BYTES,
                                                                   use_threads=False),
                             parse_options=pa_csv.ParseOptions(invalid_row_handler=record)):
      pass
  except pa.ArrowInvalid:
    pass
  if not found:
    return None
  row = found[0]
  return row.number, row.expected_columns, row.actual_columns, row.text


def _conversion_error(path, names, err, ids=()):
  match = _CONVERSION.search(str(err))
  if not match:
    bad = first_bad_row(path)
    if bad is not None and bad[0] is not None:
      line, expected, actual, text = bad
      return InputError(f"{path}, line {line}: {actual} field(s) where the header has "
                        f"{expected} ({one_line(text, 60)!r}): a cut-off or damaged line. "
                        "Restore the file (e.g. unpack or download it again).")
    return InputError(f"{path}: cannot be parsed as CSV ({one_line(err, 200)}). Check the "
                      "file.")
  col, _, kind, value = match.groups()
  name = names[int(col)] if int(col) < len(names) else f"#{col}"
  line, found = first_non_numeric(path, name) if name in names else (None, None)
  where = f" at line {line}" if line is not None else ""
  fix = ("Ids must be integers: map them to integers in the file." if name in ids else
         "Fix the value or declare the column categorical.")
  return InputError(
      f"{path}: column '{name}' must be numeric ({kind}) but holds '{found or value}'{where}. "
      + fix)


def _checksum(path) -> str:
  crc = 0
  with open(path, "rb") as f:
    while chunk := f.read(16 << 20):
      crc = zlib.crc32(chunk, crc)
  return f"{crc:08x}"


def _check_cached(path: pathlib.Path, meta_path: pathlib.Path, schema: pa.Schema):
  """(rows per file, None) of a sound cache entry, else (None, why not; None when there is
  no entry). Reads the file once for its checksum, keeps nothing."""
  if not (path.exists() and meta_path.exists()):
    return None, None
  try:
    meta = json.loads(meta_path.read_text())
    if path.stat().st_size != meta["bytes"] or _checksum(path) != meta["crc32"]:
      return None, "its checksum does not match (it changed after it was written)"
    with pa.OSFile(str(path)) as f:
      if not pa.ipc.open_file(f).schema.equals(schema):
        return None, "its columns differ from the requested ones"
    return meta["rows"], None
  except (OSError, ValueError, KeyError, TypeError, pa.ArrowException) as err:
    return None, f"it cannot be read ({type(err).__name__}: {err})"


@dataclasses.dataclass(frozen=True)
class Cached:
  """A sound cache entry: its Arrow IPC file and the rows of each source file."""
  path: pathlib.Path
  counts: list

  @property
  def n_rows(self) -> int:
    return int(sum(self.counts))

  def table(self) -> pa.Table:
    """The whole table, memory-mapped."""
    return pa.ipc.open_file(pa.memory_map(str(self.path))).read_all()

  def batches(self, max_rows: int):
    """Its record batches in order, each read into memory on its own (not memory-mapped, so
    that a pass over a table larger than memory holds one batch at a time), sliced to at most
    `max_rows` rows."""
    with pa.OSFile(str(self.path)) as f:
      reader = pa.ipc.open_file(f)
      for i in range(reader.num_record_batches):
        batch = reader.get_batch(i)
        for start in range(0, batch.num_rows, max_rows):
          yield batch.slice(start, max_rows)


def read_table(role, files, columns: dict, cache_dir: pathlib.Path, ids=()):
  """(`columns` of all `files` of a role as one memory-mapped table, rows of each file), via
  the cache (cache_entry)."""
  entry = cache_entry(role, files, columns, cache_dir, ids)
  return entry.table(), entry.counts


def cache_entry(role, files, columns: dict, cache_dir: pathlib.Path, ids=()) -> Cached:
  """The cache entry of `columns` (name -> Arrow type) of all `files` of a role, built from
  the CSVs batch by batch on first use.

  An entry is the Arrow IPC file and a sidecar with its size, CRC-32 and the rows of each
  source file; an entry that cannot be read or fails its checksum is rebuilt (with a
  warning).

  Args:
    role: the files' role, names the cache entry (e.g. "standard").
    files: CSV paths, concatenated in this order.
    columns: column name -> Arrow type to convert to.
    cache_dir: folder for the cache files.
    ids: the id columns (their conversion errors say so).
  """
  headers = [check_columns(f, columns) for f in files]
  cache_dir = pathlib.Path(cache_dir)
  key = cache_key(role, files, columns)
  path = cache_dir / f"{role}-{key}.arrow"
  meta_path = path.with_suffix(".meta.json")
  schema = pa.schema([(n, t) for n, t in columns.items()])
  counts, problem = _check_cached(path, meta_path, schema)
  if counts is not None:
    return Cached(path, counts)
  try:
    cache_dir.mkdir(parents=True, exist_ok=True)
  except OSError as err:
    raise InputError(f"cannot create the cache folder {cache_dir} ({err}). Set "
                     "--config.data.cache_dir to a writable folder.") from None
  with build_lock(cache_dir / f".{role}.lock", f"the {role} cache in {cache_dir}", log):
    counts, problem = _check_cached(path, meta_path, schema)  # Built meanwhile?
    if counts is not None:
      return Cached(path, counts)
    return _build(role, files, columns, cache_dir, ids, headers, path, meta_path, schema,
                  problem)


def _build(role, files, columns, cache_dir, ids, headers, path, meta_path, schema, problem):
  """Builds the cache file of `cache_entry` (under its lock)."""
  if problem is not None:
    log.warning("the %s cache %s is damaged: %s; rebuilding it", role, path, problem)
  log.info("building the %s cache from %d file(s) (first load)", role, len(files))
  counts = []
  with atomic_path(path) as tmp:
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
      for f, names in zip(files, headers):
        counts.append(_stream_csv(f, columns, names, writer, ids))
        log.info("  %s: %s rows", f.name, f"{counts[-1]:,}")
    meta = {"rows": counts, "bytes": tmp.stat().st_size, "crc32": _checksum(tmp)}
  write_json(meta_path, meta)
  for stale in cache_dir.glob(f"{role}-*"):
    if stale not in (path, meta_path):
      stale.unlink()
  counts, problem = _check_cached(path, meta_path, schema)
  if counts is None:
    raise InputError(f"the cache file {path} was written but {problem}; check the disk or "
                     "set --config.data.cache_dir elsewhere.")
  return Cached(path, counts)
