"""User clusters of the cluster-randomised design, per repetition (host-side set-up).

Clusters come from k-means on the repetition's encoded user features (the models' own input:
standardized numerical features and one-hot categories, fitted on the training users), with
k-means++ seeding and `experiment.cluster_iterations` Lloyd iterations over the training
users; every user (validation users too) joins its nearest centroid. Or they are the values
of a declared categorical user feature (`experiment.cluster_column`). Then
`experiment.cluster_shuffle` moves that share of users, at random, to a random other cluster
(degrading the clusters, as Holtz et al. do). All randomness comes from the repetition's key.
"""

import numpy as np

from gtesim import rng
from gtesim.data import encoding
from gtesim.errors import InputError


def _kmeans(gen, x, k: int, iterations: int):
  """Centroids [k, d] of x [n, d]: k-means++ seeding, then Lloyd iterations."""
  centroids = [x[gen.integers(len(x))]]
  dist = ((x - centroids[0]) ** 2).sum(1)
  for _ in range(1, k):
    total = dist.sum()
    pick = gen.choice(len(x), p=dist / total) if total > 0 else gen.integers(len(x))
    centroids.append(x[pick])
    dist = np.minimum(dist, ((x - x[pick]) ** 2).sum(1))
  centroids = np.stack(centroids)
  for _ in range(iterations):
    label = _nearest(x, centroids)
    sums = np.zeros_like(centroids)
    np.add.at(sums, label, x)
    counts = np.bincount(label, minlength=k)
    centroids = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], centroids)
  return centroids


def _nearest(x, centroids):
  d = (x * x).sum(1)[:, None] - 2 * x @ centroids.T + (centroids * centroids).sum(1)[None]
  return np.argmin(d, axis=1)


def n_clusters(config, ds) -> int:
  """Number of cluster ids (static: the size of the per-cluster sums)."""
  column = config.experiment.cluster_column
  if not column:
    return config.experiment.n_clusters
  return len(ds.users.cat_vocab[_column_index(ds, column)]) + 2


def _column_index(ds, column: str) -> int:
  if column not in ds.users.cat_names:
    raise InputError(f"config key experiment.cluster_column = '{column}' is not a declared "
                     f"categorical user feature; use one of {', '.join(ds.users.cat_names)}.")
  return ds.users.cat_names.index(column)


def user_clusters(config, ds, train_user: np.ndarray, user_enc: dict, key) -> np.ndarray:
  """[U] int32 cluster of every user in one repetition (see the module docstring)."""
  exp = config.experiment
  gen = rng.numpy_rng(rng.stream(key, "cluster"))
  if exp.cluster_column:
    cluster = ds.users.cat[:, _column_index(ds, exp.cluster_column)].astype(np.int64)
  else:
    layout = encoding.Layout.of(ds.users)
    x = np.asarray(encoding.dense(layout, user_enc, ds.users.num, ds.users.cat,
                                  list(ds.users.multi)), np.float64)
    train = np.flatnonzero(train_user)
    if len(train) < exp.n_clusters:
      raise InputError(f"config key experiment.n_clusters ({exp.n_clusters}) exceeds the "
                       f"{len(train)} train users; lower it.")
    centroids = _kmeans(gen, x[train], exp.n_clusters, exp.cluster_iterations)
    cluster = _nearest(x, centroids)
  k = n_clusters(config, ds)
  if exp.cluster_shuffle > 0 and k > 1:
    moved = gen.choice(len(cluster), int(round(exp.cluster_shuffle * len(cluster))),
                       replace=False)
    shift = gen.integers(1, k, len(moved))  # To a uniformly random *other* cluster.
    cluster[moved] = (cluster[moved] + shift) % k
  return cluster.astype(np.int32)
