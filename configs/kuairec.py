"""Global mode on KuaiRec 2.0's fully observed small matrix (sim.environment = "matrix").

Run (after downloading KuaiRec 2.0, see data/README.md):
  python scripts/run.py --config configs/kuairec.py --config.data.root="/path/KuaiRec 2.0"

The environment is small_matrix.csv (1,411 users x 3,327 videos, 99.6% observed): every
candidate is a catalogue video the user has not been recommended yet, with its real outcome.
The production models are pretrained on big_matrix.csv (train users x train videos).
Labels: watch_ratio, play_duration (ms) and long_view = watch_ratio >= 2 (binary); treatment
ranks by predicted watch ratio, control by predicted play duration. Without the real files,
--config.data.name=synthetic-kuairec runs the same on generated KuaiRec-format data.
"""

from gtesim.config import defaults as default_config


def get_config():
  config = default_config.use_kuairec(default_config.get_config())
  config.mode = "global"
  return config
