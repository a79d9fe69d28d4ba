"""Which package code produced a result: the git commit of `gtesim/` (study.json records it)."""

import pathlib
import subprocess

_ROOT = pathlib.Path(__file__).resolve().parent.parent


def _git(*args) -> str:
  return subprocess.run(["git", "-C", str(_ROOT), *args], capture_output=True, text=True,
                        check=True, timeout=30).stdout.strip()


def package_commit() -> dict:
  """{"head": the checkout's commit, "package": the last commit that changed gtesim/,
  "dirty": whether gtesim/ differs from it (uncommitted changes: the numbers are of no
  commit)}; {"head": None, ...} outside a git checkout."""
  try:
    return {"head": _git("rev-parse", "HEAD"),
            "package": _git("log", "-1", "--format=%H", "--", "gtesim"),
            "dirty": bool(_git("status", "--porcelain", "--", "gtesim"))}
  except (OSError, subprocess.SubprocessError):
    return {"head": None, "package": None, "dirty": None}
