"""Candidate retrieval (`sim.retrieval`): uniform, or weighted by popularity.

`popularity` draws without replacement with probability proportional to
w_v = (rows of v in all loaded logs + 1) ** sim.popularity_power.
"""

import dataclasses
import math

import numpy as np

from gtesim.errors import require
from gtesim.registry import Registry


@dataclasses.dataclass(frozen=True)
class Uniform:
  """Every eligible item equally likely."""
  weighted: bool = False

  @staticmethod
  def weights(config, ds) -> np.ndarray:
    return np.ones(len(ds.video_ids), np.float32)


@dataclasses.dataclass(frozen=True)
class Popularity:
  """P(v) ~ (rows of v + 1) ** popularity_power among the eligible items."""
  weighted: bool = True

  @staticmethod
  def weights(config, ds) -> np.ndarray:
    counts = ds.video_rows.astype(np.float64)  # Rows of each video in all logs.
    return ((counts + 1) ** config.sim.popularity_power).astype(np.float32)


RETRIEVALS = Registry("retrieval", "sim.retrieval")
RETRIEVALS.register("uniform", Uniform())
RETRIEVALS.register("popularity", Popularity())


def of(config):
  return RETRIEVALS.get(config.sim.retrieval)


def check_config(config) -> None:
  require(math.isfinite(config.sim.popularity_power) and config.sim.popularity_power >= 0,
          "sim.popularity_power", "must be a finite number >= 0.")
