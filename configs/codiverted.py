"""A/B experiment, user-corpus co-diverted design (Su et al., WSDM 2024).

Run:  python scripts/run.py --config configs/codiverted.py

Users are treated with probability p and videos are assigned to the treatment arm with
probability experiment.p_items (default p), per repetition; a user of an arm is shown only
that arm's videos, and each arm's models train on their own arm's data
(experiment.codiverted_training = "diverted"; "pooled" trains both on everything). The estimate
is the difference of arm means, each over its own half of the catalogue.
"""

from gtesim.config import defaults as default_config


def get_config():
  config = default_config.get_config()
  config.mode = "codiverted"
  return config
