"""Memory of the label models per world x arm and per repetition, and the largest B a card
holds, for KuaiRand's sizes (docs/models.md's table).

  python scripts/model_memory.py [--config configs/global.py] [--config.KEY=VALUE ...]

The feature widths are the config's dataset's; the user and video counts are KuaiRand-Pure's,
-1K's and -27K's (and the dataset's own). Counts come from the arrays' shapes
(gtesim/models/memory.py), nothing is allocated. The last line is one JSON object.
"""

import json

from ml_collections import config_flags

from gtesim import cli
from gtesim import logs
from gtesim import models
from gtesim.data import dataset
from gtesim.models import memory

_CONFIG = config_flags.DEFINE_config_file("config", "configs/global.py", "Config file.",
                                          lock_config=False)
SIZES = {"Pure": (27_285, 7_583), "1K": (1_000, 4_369_953), "27K": (27_285, 32_038_725)}
CARDS_GB = (80, 141)
log = logs.get_logger("memory")


def main(argv):
  del argv
  logs.setup()
  config = _CONFIG.value
  base = models.dims_of(dataset.load(config))
  rows = []
  for size, (n_users, n_videos) in SIZES.items():
    dims = base._replace(n_users=n_users, n_videos=n_videos)
    for model_class in models.MODEL_CLASSES.names():
      if models.counts(model_class):  # Binary labels only, so not every label's class; its
        continue  # matrix is users x videos bytes (docs/models.md).
      buckets = min(config.labels[n].ids.buckets for n in config.labels)
      # Hashing is worth showing where it saves rows.
      kinds = ("exact", "hashed") if max(n_users, n_videos) > buckets else ("exact",)
      section = config.labels[next(iter(config.labels))].copy_and_resolve_references()
      section.model = model_class
      if not models.MODEL_CLASSES.get(model_class)(section, dims=dims).describe():
        kinds = ("-",)  # No ID tables.
      for tables in kinds:
        c = config.copy_and_resolve_references()
        for name in c.labels:
          c.labels[name].model = model_class
          if tables == "exact":
            c.labels[name].ids.budget = max(n_users, n_videos)
          elif tables == "hashed":  # The tables with more ids than buckets are hashed.
            c.labels[name].ids.budget = c.labels[name].ids.buckets
        lms = models.label_models(c, dims)
        arm = memory.model_bytes(lms, dims)
        rep = memory.per_repetition_bytes(lms, dims, n_worlds=2, arms=1)
        rows.append({"size": size, "users": n_users, "videos": n_videos, "model": model_class,
                     "tables": tables, "per_world_arm_mib": arm / 2**20,
                     "per_repetition_mib": rep / 2**20,
                     **{f"largest_B_{gb}gb": int(gb * 1e9 // rep) for gb in CARDS_GB}})
  print("| size (users × videos) | model | ID tables | per world × arm | per repetition | "
        + " | ".join(f"largest B, {gb} GB" for gb in CARDS_GB) + " |")
  print("|---|---|---|---|---|" + "---|" * len(CARDS_GB))
  for r in rows:
    print(f"| {r['size']} ({r['users']:,} × {r['videos']:,}) | {r['model']} | {r['tables']} | "
          f"{_mib(r['per_world_arm_mib'])} | {_mib(r['per_repetition_mib'])} | "
          + " | ".join(f"{r[f'largest_B_{gb}gb']:,}" for gb in CARDS_GB) + " |")
  print(json.dumps({"rows": rows}))


def _mib(x) -> str:
  return f"{x / 1024:.2f} GiB" if x >= 1024 else f"{x:.1f} MiB"


if __name__ == "__main__":
  cli.run(main, tag="memory")
