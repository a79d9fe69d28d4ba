"""The designs of the choice world (Brennan, Holtz et al., WWW 2025; environments/choice.py).

A run of that world is every user in every period, so a design is what it draws on the host
for one run (each user's arm in each period, each item's arm) and how the two rankers train
(environments.choice.RunSpec.training, item_arms). Arm 0 is algo1, arm 1 is algo2, and p is
the share of users on algo2, as the page defines it.

- `naive` (= gtesim's pooling): each user on algo2 with probability p; both rankers train on
  the one shared matrix.
- `data_diverted` (= splitting from the first period, no pretraining): each ranker trains on
  its own arm's users' rows only, warm-up consumption included.
- `codiverted`: users as naive, and each item on algo2 with probability p (the whole
  catalogue, future items included); a user sees only its arm's items, recommended and new;
  the shared matrix trains both.
- `cluster`: k-means on the users' true tastes, k in [`cluster_k_min`, `cluster_k_max`] by
  the best silhouette (once per world); a `shuffle` share of each cluster's users (rounded;
  or, `shuffle_reading` "each", each user with that probability) moves to a uniformly chosen
  other cluster; exactly floor(k p) clusters, chosen uniformly, are
  on algo2; the shared matrix trains both. The realised share of users on algo2 is reported.
- `switchback`: each period, every user is on algo2 with probability p (one draw per period);
  the shared matrix trains both.
- `snapshot` (gtesim's): users as naive; both rankers rank from the matrix at the end of the
  warm-up and never learn after it.

gtesim's `weighted` design does not run here: it reweights a gradient model's loss, and these
rankers learn by counting, with no loss to weight.
"""

import dataclasses
from typing import ClassVar

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

from gtesim.errors import InputError
from gtesim.registry import Registry


@dataclasses.dataclass(frozen=True)
class Draw:
  """One run's assignment."""
  arm: np.ndarray  # [T, U] int32: 0 = algo1, 1 = algo2.
  item_arm: np.ndarray  # [I] int32 (co-diverted), zeros otherwise.
  cluster: np.ndarray | None = None  # [U] each user's cluster (the cluster design).


@dataclasses.dataclass(frozen=True)
class ChoiceDesign:
  """A design of the choice world (module docstring)."""
  name: str
  training: str = "pooled"  # environments.choice.RunSpec.training.
  item_arms: bool = False
  se_methods: tuple = ("user",)  # The standard errors of a run (stats.replication.SE_METHODS):
  # users as units, and the design's own randomisation unit when it has another.
  clusters_users: ClassVar[bool] = False  # Its draws need the users' taste clusters.

  def check(self, clusters, p: float) -> None:
    """Refuses a p under which an arm would be empty."""

  def draw(self, gen: np.random.Generator, p: float, n_periods: int, n_items: int,
           clusters) -> Draw:
    """One run's arms from the run's generator (the users' uniforms first, so every p of a
    sweep uses the same ones)."""
    n_users = len(clusters.label)
    arm = (gen.random(n_users) < p).astype(np.int32)
    return Draw(np.broadcast_to(arm, (n_periods, n_users)).copy(),
                np.zeros(n_items, np.int32))


@dataclasses.dataclass(frozen=True)
class Codiverted(ChoiceDesign):
  def draw(self, gen, p, n_periods, n_items, clusters):
    users = super().draw(gen, p, n_periods, n_items, clusters)
    return Draw(users.arm, (gen.random(n_items) < p).astype(np.int32))


@dataclasses.dataclass(frozen=True)
class Switchback(ChoiceDesign):
  def draw(self, gen, p, n_periods, n_items, clusters):
    arm = (gen.random(n_periods) < p).astype(np.int32)
    return Draw(np.broadcast_to(arm[:, None], (n_periods, len(clusters.label))).copy(),
                np.zeros(n_items, np.int32))


@dataclasses.dataclass(frozen=True)
class Cluster(ChoiceDesign):
  shuffle: float = 0.0
  shuffle_reading: str = "share"  # SHUFFLE_READINGS: the page leaves it open.
  clusters_users: ClassVar[bool] = True

  def check(self, clusters, p):
    n_treated = int(np.floor(clusters.k * p))
    if not 0 < n_treated < clusters.k:
      raise InputError(f"config key replication.p = {p}: the cluster design puts floor(k p) = "
                       f"{n_treated} of the k = {clusters.k} taste clusters (best silhouette) "
                       f"on algo2, so one arm is empty; use a p with 1 <= floor({clusters.k} "
                       f"p) <= {clusters.k - 1}.")

  def draw(self, gen, p, n_periods, n_items, clusters):
    label = shuffled(gen, clusters.label, clusters.k, self.shuffle, self.shuffle_reading)
    treated = gen.permutation(clusters.k)[:int(np.floor(clusters.k * p))]
    arm = np.isin(label, treated).astype(np.int32)
    return Draw(np.broadcast_to(arm, (n_periods, len(label))).copy(),
                np.zeros(n_items, np.int32), label)


def _moved_share(gen, members, share):
  return gen.choice(members, int(round(share * len(members))), replace=False)


def _moved_each(gen, members, share):
  return members[gen.random(len(members)) < share]


SHUFFLE_READINGS = {  # `replication.shuffle_reading`: which of a cluster's users move.
    "share": _moved_share,  # round(share * size) of them, chosen uniformly.
    "each": _moved_each,  # each with probability `share`, independently.
}


def shuffled(gen, label, k: int, share: float, reading: str = "share"):
  """Cluster labels with some users of each cluster (SHUFFLE_READINGS[reading]) moved to a
  uniformly chosen other cluster."""
  out = label.copy()
  for c in range(k):
    moved = SHUFFLE_READINGS[reading](gen, np.flatnonzero(label == c), share)
    other = gen.integers(k - 1, size=len(moved))
    out[moved] = other + (other >= c)
  return out


@dataclasses.dataclass(frozen=True)
class Clusters:
  """The users' clusters on their true tastes (k by silhouette) and each k's silhouette."""
  label: np.ndarray  # [U] int
  k: int
  silhouettes: dict  # {k: silhouette score}


def taste_clusters(taste, k_min: int, k_max: int, seed: int) -> Clusters:
  """k-means (scikit-learn, k-means++ seeding, 10 restarts) of the taste vectors for every k in
  [k_min, k_max]; the k of the best silhouette (the smallest k among equal ones)."""
  best, scores = None, {}
  for k in range(k_min, min(k_max, len(taste) - 1) + 1):
    label = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(taste)
    scores[k] = float(silhouette_score(taste, label))
    if best is None or scores[k] > scores[best[0]]:
      best = (k, label)
  if best is None:
    raise InputError(f"config key replication.cluster_k_min = {k_min}: no k in [{k_min}, "
                     f"{k_max}] has 2 <= k < the {len(taste)} users.")
  return Clusters(best[1].astype(np.int32), best[0], scores)


def all_users(n_users: int) -> Clusters:
  """One cluster of every user (the designs that do not cluster)."""
  return Clusters(np.zeros(n_users, np.int32), 1, {})


DESIGNS = Registry("choice-world design", "replication.design")
DESIGNS.register("naive", ChoiceDesign("naive"))
DESIGNS.register("data_diverted", ChoiceDesign("data_diverted", training="diverted"))
DESIGNS.register("codiverted", Codiverted("codiverted", item_arms=True))
DESIGNS.register("cluster", Cluster("cluster", se_methods=("user", "cluster")))
DESIGNS.register("switchback", Switchback("switchback", se_methods=("user", "period")))
DESIGNS.register("snapshot", ChoiceDesign("snapshot", training="frozen"))


def make(name: str, shuffle: float = 0.0, shuffle_reading: str = "share") -> ChoiceDesign:
  """The design `name` (`shuffle`, `shuffle_reading`: the cluster design's shuffle)."""
  design = DESIGNS.get(name)
  if isinstance(design, Cluster):
    return dataclasses.replace(design, shuffle=shuffle, shuffle_reading=shuffle_reading)
  return design
