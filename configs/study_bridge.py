"""The bridge (issue 36): the Brennan-Holtz rankers in gtesim's own `latent` world. Does the
naive design's large bias in the choice world (experiments/replication-brennan-holtz/) come
from the counting rankers or from that world?

Run (resumable), one study per pair of rankers (treatment, control):
  python scripts/study.py --config configs/study_bridge.py:item_cf-user_cf \\
      --out experiments/bridge-latent/item_cf-user_cf
  python scripts/study.py --config configs/study_bridge.py:item_cf-two_tower \\
      --out experiments/bridge-latent/item_cf-two_tower
  python scripts/study.py --config configs/study_bridge.py:two_tower-mlp \\
      --out experiments/bridge-latent/two_tower-mlp

The rankers study's world (configs/study_rankers.py: synthetic `mini`, 400 users x 800 videos,
360 train users, 24 a step, 150 steps = 10 visits per train user) without release or
exploration. Both arms rank by their click model alone (alpha 1 on click, 0 on play time), so
a counting ranker (models/cf.py: its state is the click matrix, filled from the logged clicks
in pretraining and from every click of the rows a design trains on) orders candidates exactly
by its CF score, as in the choice world; the play-time models still train and are measured.
The effect is treatment's ranker - control's, on clicks (the take-up's analogue) and play time.
Designs: naive (pooling), data-diverted (splitting), co-diverted, snapshot; weighting is
refused for a counting ranker (a count has no weight); cluster and switchback are left out
for cost (their biases are the rankers study's subject). No A/A (gap 0): the arms' rankers
differ, so it would not be one. B = 200 (100 for two_tower-mlp); each repetition's truth the mean of K = 5 global
replicates: a B = 20, K = 1 probe gave the truth's between-repetition sd 0.009 clicks against
pooling's user SE of ~0.021, so K = 5 keeps the truth's noise under a third of it (the report
states the measured ratio). Costs per pair: docs/studies.md.
"""

import pathlib
import runpy

from gtesim.config import defaults as default_config

PAIRS = ("item_cf-user_cf", "item_cf-two_tower", "two_tower-mlp")


def get_config(pair="item_cf-user_cf"):
  if pair not in PAIRS:
    raise ValueError(f"configs/study_bridge.py: pair '{pair}' is not one of {', '.join(PAIRS)}.")
  treatment, control = pair.split("-")
  rankers = runpy.run_path(str(pathlib.Path(__file__).with_name("study_rankers.py")))
  config = rankers["get_config"]()  # Its data, sizes and horizon; then no release, greedy.
  config.sim.release = "all"
  config.sim.exploration = "greedy"
  # The gradient pair is the yardstick, not the question: B = 100 keeps the three studies
  # within ~75 min on 2 cores.
  config.repetitions = 100 if pair == "two_tower-mlp" else 200
  config.labels.click.alpha_T = config.labels.click.alpha_C = 1.0
  config.labels.play_time.alpha_T = config.labels.play_time.alpha_C = 0.0
  config.arms.treatment.labels.click.model = treatment  # Sizes: the defaults.
  config.arms.control.labels.click.model = control
  config.study = study = default_config.study_section()
  study.name = f"bridge-{pair}"
  study.designs = ("pooling", "splitting", "codiverted", "snapshot")
  study.p_values = (0.5,)
  study.alpha_gaps = (1.0,)
  study.weighting_video = False
  study.frozen_truth = False
  study.truth_replicates = 5
  return config
