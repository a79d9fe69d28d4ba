"""The default study: global truth and the four A/B designs on synthetic Pure-like data.

Run:
  python scripts/study.py --config configs/study.py

B = 100 repetitions of every run (vmapped), 100 steps x 128 users, smaller models than the
default so the whole study (18 runs) fits in about 45 minutes on 2 CPU cores. Writes
experiments/<study.name>/: study.json, report.md, figures, and runs/<run>/ (each a workdir of
scripts/run.py; an interrupted study skips the runs already finished).
"""

from gtesim import default_config


def get_config():
  config = default_config.get_config()
  config.repetitions = 100
  config.checkpoint_every = 100
  config.sim.n_steps = 100
  config.sim.batch_size = 128
  config.sim.validate_every = 25
  config.pretrain.n_interactions = 20_000
  config.pretrain.epochs = 2
  for label in config.labels.values():
    label.hidden = (64, 32)
  config.experiment.weight_model.hidden = (64, 32)
  config.study = study = default_config.study_section()
  study.name = "synthetic-pure"
  return config
