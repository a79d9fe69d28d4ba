"""Cluster-randomised design: users are clustered, whole clusters are treated, data pooled.

A cluster is treated when its per-repetition uniform is below p; the `unit` standard error
treats clusters as the units (CR1 over per-cluster sums, summed on the device from the
per-user sums). Clusters come from k-means on the repetition's encoded user features (the
models' own input: standardized numerical features and one-hot categories, fitted on the
training users), with
k-means++ seeding and `experiment.cluster.iterations` Lloyd iterations over the training
users; every user (validation users too) joins its nearest centroid. Or they are the values
of a declared categorical user feature (`experiment.cluster.column`). Then
`experiment.cluster.shuffle` moves that share of users, at random, to a random other cluster
(degrading the clusters, as Holtz et al. do). All randomness comes from the repetition's key.
"""

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from gtesim import prng
from gtesim.data import encoding
from gtesim.designs import pieces
from gtesim.designs.base import ABDesign, ab_pieces
from gtesim.errors import require
from gtesim.errors import GtesimError, InputError
from gtesim.stats import estimators
from gtesim.stats import variance


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


def _column_index(ds, column: str) -> int:
  if column not in ds.users.cat_names:
    raise InputError(f"config key experiment.cluster.column = '{column}' is not a declared "
                     f"categorical user feature; use one of {', '.join(ds.users.cat_names)}.")
  return ds.users.cat_names.index(column)


@dataclasses.dataclass(frozen=True)
class Clusters(pieces.Assignment):
  """Whole clusters are treated: one uniform per (repetition, cluster), below p. Its settings
  are `experiment.cluster.*`; its per-repetition set-up ([U] int32 cluster of every user) is
  keyed by them, so jobs with other settings get their own clusters."""
  n: int = 2  # k of k-means.
  column: str = ""  # A categorical user feature whose values are the clusters instead.
  iterations: int = 10  # Lloyd iterations.
  shuffle: float = 0.0  # Share of users moved to a random other cluster.

  @classmethod
  def of(cls, config) -> "Clusters":
    c = config.experiment.cluster
    return cls(int(c.n), str(c.column), int(c.iterations), float(c.shuffle))

  @property
  def data(self) -> str:
    return (f"clusters(n={self.n},column={self.column},iterations={self.iterations},"
            f"shuffle={self.shuffle!r})")

  def n_units(self, ds) -> int:
    """Number of cluster ids (static: the size of the per-cluster sums)."""
    if not self.column:
      return self.n
    return len(ds.users.cat_vocab[_column_index(ds, self.column)]) + 2

  def rep_data(self, ds, train_user, user_enc, key):
    """[U] int32 cluster of every user in one repetition (see the module docstring)."""
    gen = prng.numpy_rng(prng.stream(key, "cluster"))
    if self.column:
      cluster = ds.users.cat[:, _column_index(ds, self.column)].astype(np.int64)
    else:
      layout = encoding.Layout.of(ds.users)
      x = np.asarray(encoding.dense(layout, user_enc, ds.users.num, ds.users.cat,
                                    list(ds.users.multi)), np.float64)
      train = np.flatnonzero(train_user)
      if len(train) < self.n:
        raise InputError(f"config key experiment.cluster.n ({self.n}) exceeds the "
                         f"{len(train)} train users; lower it.")
      centroids = _kmeans(gen, x[train], self.n, self.iterations)
      cluster = _nearest(x, centroids)
    k = self.n_units(ds)
    if self.shuffle > 0 and k > 1:
      moved = gen.choice(len(cluster), int(round(self.shuffle * len(cluster))), replace=False)
      shift = gen.integers(1, k, len(moved))  # To a uniformly random *other* cluster.
      cluster[moved] = (cluster[moved] + shift) % k
    return cluster.astype(np.int32)

  def assign(self, rep, users, step_key, p, t):
    """A cluster's users share their Z at every step."""
    cluster = rep.designs[self.data][users]
    return jax.vmap(lambda c: pieces.unit_uniform(rep.key, c))(cluster) < p


@dataclasses.dataclass(frozen=True)
class ClusterUnit(pieces.UserUnit):
  """Clusters are the units: the `unit` standard error is CR1 over per-cluster sums, summed on
  the device from the per-user ones (the clusters of the design's assignment)."""
  n_units: int | None = None  # Cluster ids (static: the size of the per-cluster sums); None
  # when the design was made without the dataset (reporting only).
  unit_fields: ClassVar[tuple] = ("user_var", "unit_var", "unit_df", "unit_count")  # + the
  # cluster-level variance so far, its degrees of freedom and the number of clusters.

  def unit_sums(self, spec, state, rep):
    """Per-cluster outcome sums [n_units, A, L] and recommendation counts [n_units, A] from
    the per-user ones."""
    if self.n_units is None:
      raise GtesimError("the cluster design was made without its dataset (designs.make(config,"
                        " ds)): its number of clusters is unknown.")
    if not isinstance(spec.design.assignment, Clusters):
      raise GtesimError(f"the {spec.design.name} design's unit is its clusters, but its "
                        "assignment is not by clusters (designs/cluster.py Clusters).")
    unit = rep.designs[spec.design.assignment.data][rep.train_users]
    return (jax.ops.segment_sum(state.user_sum, unit, num_segments=self.n_units),
            jax.ops.segment_sum(state.user_n, unit, num_segments=self.n_units))

  def evaluate(self, spec, state, rep):
    out = super().evaluate(spec, state, rep)
    unit_sum, unit_n = self.unit_sums(spec, state, rep)
    out["unit_var"], out["unit_df"] = variance.arm_clustered_variance(unit_sum, unit_n, xp=jnp)
    count = jnp.sum(jnp.sum(unit_n, 1) > 0)  # Clusters with a recommendation.
    out["unit_count"] = jnp.full(len(spec.models), count, jnp.float32)
    return out

  def variance(self, steps_sum, steps_n, evals, e, point):
    return evals["unit_var"][e][:, point], evals["unit_df"][e][:, point]


@dataclasses.dataclass(frozen=True)
class Cluster(ABDesign):
  """See the module docstring."""

  @classmethod
  def from_config(cls, name, config, ds=None):
    clusters = Clusters.of(config)
    return cls(name, **{**ab_pieces(config), "assignment": clusters,
                        "unit": ClusterUnit(covariate=estimators.needed(config, "covariate"),
                                            n_units=None if ds is None else clusters.n_units(ds))})

  @classmethod
  def check_config(cls, config, active):
    exp = config.experiment
    require(exp.cluster.n >= 2, "experiment.cluster.n", "must be at least 2.")
    require(exp.cluster.iterations >= 0, "experiment.cluster.iterations", "must be >= 0.")
    require(0 <= exp.cluster.shuffle <= 1, "experiment.cluster.shuffle", "must be in [0, 1].")
