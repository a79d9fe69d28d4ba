"""Finds a dataset's CSV files by role (SPEC §2): KuaiRand (Pure, 1K, 27K) or KuaiRec 2.0."""

import dataclasses
import pathlib
import re

from gtesim.errors import InputError

# Role -> glob pattern. KuaiRand's Pure, 1K and 27K all follow these (27K splits some into
# _partN pieces); KuaiRec 2.0 has one file per role. Files of other roles (KuaiRec's
# social_network.csv, kuairec_caption_category.csv) are never opened.
PATTERNS = {
    "kuairand": {
        "standard": "log_standard_*.csv",
        "random": "log_random_*.csv",
        "user": "user_features_*.csv",
        "video_basic": "video_features_basic_*.csv",
        "video_statistic": "video_features_statistic_*.csv",
    },
    "kuairec": {
        "small_matrix": "small_matrix.csv",
        "big_matrix": "big_matrix.csv",
        "user": "user_features.csv",
        "video_daily": "item_daily_features.csv",
        "video_categories": "item_categories.csv",
    },
}
LOG_ROLES = {"kuairand": ("standard", "random"), "kuairec": ("small_matrix", "big_matrix")}
_VERSION = re.compile(r"_(pure|1k|27k|[A-Za-z0-9]+?)(?:_part\d+)?\.csv$")
_NUMBERS = re.compile(r"(\d+)")
_NAMES = {"kuairand": "the KuaiRand version", "kuairec": "KuaiRec 2.0"}


def _natural_key(path: pathlib.Path):
  return [int(p) if p.isdigit() else p for p in _NUMBERS.split(path.name)]


@dataclasses.dataclass(frozen=True)
class KuaiRandFiles:
  """The files of one KuaiRand version, each role's files in natural order (part2 < part10)."""
  folder: pathlib.Path
  by_role: dict

  def __getitem__(self, role):
    return self.by_role[role]


def find_files(root, roles, fmt: str = "kuairand") -> KuaiRandFiles:
  """Finds the files of each role in `root` (or `root/data`, as the archives unpack).

  Args:
    root: the folder.
    roles: the roles to find (keys of PATTERNS[fmt]).
    fmt: "kuairand" or "kuairec".

  Raises:
    InputError: the folder or a role's files are missing, or files of two versions are mixed.
  """
  root = pathlib.Path(root).expanduser()
  if not str(root) or not root.is_dir():
    raise InputError(
        f"data.root '{root}' is not a folder. Point --config.data.root at the folder holding "
        f"the {_NAMES[fmt]} CSVs (see data/README.md), or use --config.data.name=synthetic.")
  patterns = PATTERNS[fmt]
  folder = root
  first = patterns[LOG_ROLES[fmt][0]]
  if not any(root.glob(first)) and (root / "data").is_dir():
    folder = root / "data"
  by_role = {}
  for role in roles:
    files = sorted(folder.glob(patterns[role]), key=_natural_key)
    if not files:
      raise InputError(
          f"no {role} file ({patterns[role]}) in {folder}. Download {_NAMES[fmt]} "
          "(see data/README.md) and put all its CSVs in that folder.")
    by_role[role] = files
  if fmt != "kuairand":
    return KuaiRandFiles(folder=folder, by_role=by_role)
  versions = {}
  for files in by_role.values():
    for f in files:
      match = _VERSION.search(f.name)
      versions.setdefault(match.group(1) if match else f.name, []).append(f.name)
  if len(versions) > 1:
    listing = "; ".join(f"{v}: {', '.join(n[:3])}" for v, n in versions.items())
    raise InputError(
        f"{folder} mixes files of several KuaiRand versions ({listing}). Keep one version "
        "per folder and point data.root at it.")
  return KuaiRandFiles(folder=folder, by_role=by_role)
