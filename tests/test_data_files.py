"""Finding KuaiRand files by role."""

import pytest

from conftest import kuairand_folder, write
from gtesim.data import files
from gtesim.errors import InputError

ROLES = ("standard", "random", "user", "video_basic", "video_statistic")


def test_finds_roles_in_data_subfolder_with_parts_in_natural_order(tmp_path):
  root = kuairand_folder(tmp_path, version="27k", parts=True)
  for i in (10, 3):  # part10 must sort after part2.
    write(root / "data" / f"log_standard_4_08_to_4_21_27k_part{i}.csv", "user_id\n")
  found = files.find_files(root, ROLES)
  assert found.folder == root / "data"
  assert [p.name for p in found["standard"]] == [
      f"log_standard_4_08_to_4_21_27k_part{i}.csv" for i in (1, 2, 3, 10)]
  assert len(found["video_statistic"]) == 2


def test_missing_role_names_pattern_and_folder(tmp_path):
  root = kuairand_folder(tmp_path)
  (root / "data" / "log_random_4_22_to_5_08_pure.csv").unlink()
  with pytest.raises(InputError, match=r"no random file \(log_random_\*\.csv\) in .*data"):
    files.find_files(root, ROLES)


def test_mixed_versions_are_refused(tmp_path):
  root = kuairand_folder(tmp_path)
  write(root / "data" / "log_random_4_22_to_5_08_1k.csv", "user_id\n")
  with pytest.raises(InputError, match="mixes files of several KuaiRand versions"):
    files.find_files(root, ROLES)


def test_missing_folder(tmp_path):
  with pytest.raises(InputError, match="is not a folder"):
    files.find_files(tmp_path / "nope", ROLES)
