"""Study on a fully observed matrix (sim.environment = "matrix"): KuaiRec 2.0's small matrix.

Run:
  python scripts/study.py --config configs/study_matrix.py            # generated KuaiRec-format
  python scripts/study.py --config configs/study_matrix.py:kuairec \\
      --config.data.root="/path/KuaiRec 2.0"                           # the real KuaiRec 2.0

The environment is the small matrix (every candidate is a catalogue video with an outcome),
the production models are pretrained on 30,000 rows of the big matrix. Labels: watch_ratio,
play_duration and long_view; treatment ranks by predicted watch ratio, control by predicted
play duration. 8 epochs of the train users (every train user is recommended to 8 times),
truth (trained and frozen models) and the seven designs at the main point and in the A/A,
B = 200 (a type-I error of 0.05 told from 0.10). Each repetition's truth is the mean of 11 global
replicates: at K = 6 the play-duration truth's SE was 1,320 ms against the estimate's user SE
of 3,080 (0.43; one replicate's real sd ~3,230 ms, 1.4x its batch-means SE), so K >= 10 is
needed for at most a third; K = 11 gave 0.32 (measured). About 56 min on 2 CPU cores alone.

Without the real files (they cannot be downloaded on every machine), the default runs on
generated KuaiRec-format data (`synthetic-kuairec`, size `small`: 600 x 1,200 fully observed,
300k pretraining rows over 3,000 users x 4,000 videos), where long_view is watch_ratio >= 1:
the synthetic model's watch ratios rarely reach 2 (0.3% of pairs). Writes
experiments/kuairec-format-synthetic/ (or experiments/kuairec/ on the real data).
"""

from gtesim.config import defaults as default_config


def get_config(data="synthetic"):
  if data not in ("synthetic", "kuairec"):
    raise ValueError(f"configs/study_matrix.py:{data}: use ':synthetic' or ':kuairec'.")
  config = default_config.get_config()
  default_config.use_kuairec(config, "kuairec" if data == "kuairec" else "synthetic-kuairec")
  config.repetitions = 200
  config.sim.validate_every = 10
  config.sim.n_steps = 80  # 8 epochs of 10 steps.
  config.checkpoint_every = 80
  config.sim.eval_rows = 2048
  config.pretrain.n_interactions = 30_000  # B = 200 production models in ~10 min.
  config.estimator.batch_blocks = 8  # Blocks of 10 steps.
  config.study = study = default_config.study_section()
  study.p_values = (0.5,)
  study.alpha_gaps = (0.0, 1.0)
  study.weighting_video = False
  study.truth_replicates = 11
  if data == "kuairec":
    config.sim.batch_size = 127  # 10 steps per epoch of the 1,270 train users.
    study.name = "kuairec"
  else:
    config.data.synthetic.kuairec_size = "small"
    config.labels.long_view.threshold = 1.0
    config.sim.batch_size = 54  # 10 steps per epoch of the 540 train users.
    study.name = "kuairec-format-synthetic"
  return config
