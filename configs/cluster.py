"""A/B experiment, cluster-randomised design.

Run:  python scripts/run.py --config configs/cluster.py

Users are partitioned into experiment.n_clusters clusters (k-means on the training users'
encoded features, per repetition; or the values of experiment.cluster_column), whole clusters
are treated with probability p, data are pooled; the `unit` standard error treats clusters as
the units. experiment.cluster_shuffle moves a share of users to a random other cluster.
"""

from gtesim.config import defaults as default_config


def get_config():
  config = default_config.get_config()
  config.mode = "cluster"
  return config
