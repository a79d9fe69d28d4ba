"""CSV reading through the columnar cache."""

import os

import pyarrow as pa
import pytest

from conftest import write
from gtesim.data import tables
from gtesim.errors import InputError

COLUMNS = {"user_id": pa.int64(), "play_time_ms": pa.float32()}


def _csv(tmp_path, text="user_id,is_click,play_time_ms\n1,0,12.0\n2,1,30\n"):
  return write(tmp_path / "log_standard_x_pure.csv", text)


def test_reads_only_declared_columns_and_counts_rows(tmp_path):
  path = _csv(tmp_path)
  table, counts = tables.read_table("standard", [path], COLUMNS, tmp_path / "cache")
  assert table.column_names == ["user_id", "play_time_ms"]
  assert table["play_time_ms"].to_pylist() == [12.0, 30.0]
  assert counts == [2]


def test_cache_hit_then_rebuild_on_file_or_column_change(tmp_path, monkeypatch):
  path = _csv(tmp_path)
  calls = []
  real = tables._stream_csv
  monkeypatch.setattr(tables, "_stream_csv", lambda *a: calls.append(1) or real(*a))
  cache = tmp_path / "cache"
  tables.read_table("standard", [path], COLUMNS, cache)
  tables.read_table("standard", [path], COLUMNS, cache)
  assert len(calls) == 1  # Second load is a cache hit.
  path.write_text("user_id,is_click,play_time_ms\n1,0,12.0\n2,1,30\n3,1,5\n")
  os.utime(path, ns=(1, 1))
  table, _ = tables.read_table("standard", [path], COLUMNS, cache)
  assert len(calls) == 2 and table.num_rows == 3
  table, _ = tables.read_table("standard", [path], {"user_id": pa.int64()}, cache)
  assert len(calls) == 3 and table.column_names == ["user_id"]
  assert len(list(cache.glob("standard-*.arrow"))) == 1  # Stale entries are removed.


def test_missing_column_names_file_and_column(tmp_path):
  path = _csv(tmp_path)
  with pytest.raises(InputError, match=r"log_standard_x_pure.csv: column 'play_time' is not in "
                     r"the file \(did you mean 'play_time_ms'\?\)"):
    tables.read_table("standard", [path], {"play_time": pa.float32()}, tmp_path / "c")


def test_non_numeric_value_names_file_column_and_row(tmp_path):
  path = _csv(tmp_path, "user_id,is_click,play_time_ms\n1,0,12\n2,1,abc\n")
  with pytest.raises(InputError, match=r"log_standard_x_pure.csv: column 'play_time_ms' must be "
                     r"numeric .* holds 'abc'"):
    tables.read_table("standard", [path], COLUMNS, tmp_path / "c")
  assert not list((tmp_path / "c").glob("*.arrow"))  # No half-written cache entry.
