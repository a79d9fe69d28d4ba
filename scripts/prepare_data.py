"""Loads (and caches) the data a config names and prints its overview.

  python scripts/prepare_data.py --config configs/global.py [--config.KEY=VALUE ...]

The last line printed is one JSON object with the dataset's counts and rates, the load's time
and its peak memory: `peak_rss_mib` (the process's maximum resident set),
`baseline_rss_mib` (that maximum before the load, the interpreter and its imports) and
`bytes_per_log_row` (the difference per log row read, environment and pretraining rows).
"""

import json
import resource
import time

from absl import flags
from ml_collections import config_flags

from gtesim import cli
from gtesim.config import checks as config_check
from gtesim import logs
from gtesim.data import dataset
from gtesim.data import encoding
from gtesim.data import packing

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file.", lock_config=True)
flags.mark_flags_as_required(["config"])
log = logs.get_logger("prepare")


def main(argv):
  del argv
  logs.setup()
  config = _CONFIG.value
  config_check.check(config)
  baseline_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  start = time.perf_counter()
  ds = dataset.load(config)
  load_s = time.perf_counter() - start
  packed = packing.pack(ds, config.data.max_history, config.data.page_slots,
                       config.data.pack_seed)
  memory = packing.memory_report(ds, packed)
  ov = ds.overview
  log.info("folder %s", ov["folder"])
  log.info("%s users, %s videos, %s interactions (%s random exposure, %s repeating an earlier "
           "row)", f"{ov['n_users']:,}", f"{ov['n_videos']:,}", f"{ov['n_interactions']:,}",
           f"{ov['n_random_exposure']:,}", f"{ov['n_rows_repeating_an_earlier_row']:,}")
  for name, rows in ov["rows_per_file"].items():
    log.info("  %s: %s rows", name, f"{rows:,}")
  stat_keys = dataset.label_stat_keys(config)
  log.info("environment: %.2f%% of its users x videos observed; %s", 100 * ov["env_density"],
           ", ".join(f"{k} {ov[k]:.4g}" for k in stat_keys))
  if ov["n_pretrain_interactions"]:
    log.info("pretraining-only rows: %s over %s users and %s videos of all logs",
             f"{ov['n_pretrain_interactions']:,}", f"{ov['n_users_all_logs']:,}",
             f"{ov['n_videos_all_logs']:,}")
  for entity, feats in (("user", ds.users), ("video", ds.videos)):
    layout = encoding.Layout.of(feats)
    for name in feats.num_names:
      log.info("  %s %-34s numerical      width 1   missing %d", entity, name,
               feats.missing[name])
    for name, width in zip(feats.cat_names + feats.multi_names,
                           layout.cat_widths + layout.multi_widths):
      kind = "multi-hot" if name in feats.multi_names else "categorical"
      log.info("  %s %-34s %-14s width %-3d missing %d", entity, name, kind, width,
               feats.missing[name])
    log.info("%s feature vector width %d", entity, layout.width)
  log.info("packed: pages of %d slots, window %d slots per user, %.1f%% of slots filled, %d "
           "bytes per slot, %.1f bytes per interaction, %.1f MiB + %.1f MiB feature tables; "
           "used mask %.1f MiB per world", memory["page_slots"], memory["window_slots"],
           100 * memory["slot_fill"], memory["bytes_per_slot"],
           memory["bytes_per_interaction"], memory["packed_bytes"] / 2**20,
           memory["feature_table_bytes"] / 2**20, memory["used_mask_bytes_per_world"] / 2**20)
  peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  n_rows = ov["n_interactions"] + ov["n_pretrain_interactions"]
  per_row = (peak_mib - baseline_mib) * 2**20 / max(n_rows, 1)
  log.info("loaded in %.1f s, peak memory %.0f MiB (%.0f MiB before the load: %.1f bytes per "
           "log row above it)", load_s, peak_mib, baseline_mib, per_row)
  summary = {k: ov[k] for k in ("n_users", "n_videos", "n_interactions", "env_density",
                                "n_pretrain_interactions", "n_random_exposure", *stat_keys)}
  summary.update(memory, load_seconds=round(load_s, 3), peak_rss_mib=round(peak_mib, 1),
                 baseline_rss_mib=round(baseline_mib, 1), bytes_per_log_row=round(per_row, 1))
  print(json.dumps(summary))


if __name__ == "__main__":
  cli.run(main, tag="prepare")
