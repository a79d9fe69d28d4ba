"""The worlds a run simulates per repetition, and the sweep points they belong to."""

import dataclasses
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from gtesim.core import exploration as exploration_lib
from gtesim.core.state import Point

if TYPE_CHECKING:  # designs.base imports this module.
  from gtesim.designs.base import Design


class SweepPoint(NamedTuple):
  """One point of a run's sweep (the traced inputs its worlds differ by)."""
  p_treatment: float
  alpha_gap: float
  epsilon: float = 0.0
  temperature: float = 1.0


def exploration_inputs(points) -> dict:
  """Point's exploration fields of the points, stacked [n_points]."""
  return {"epsilon": np.asarray([q.epsilon for q in points], np.float32),
          "temperature": np.asarray([q.temperature for q in points], np.float32)}


@dataclasses.dataclass(frozen=True)
class Worlds:
  """A run's design and its sweep points (SweepPoint, ...): the design decides
  the worlds (global mode: GT at every point's gap, then one GC; an A/B design: one world per
  point with arms T and C)."""
  design: "Design"
  points: tuple  # SweepPoint, ...
  exploration: exploration_lib.Greedy = exploration_lib.Greedy()  # The run's choice rule
  # (core.exploration: Greedy or a subclass).

  @property
  def mode(self) -> str:
    return self.design.name

  @property
  def n_worlds(self) -> int:
    return self.design.layout.n_worlds(len(self.points))

  @property
  def arms(self) -> int:
    return self.design.arms

  def groups(self) -> list:
    """(world, arm, point, name) of every world x arm (a point of -1: every point)."""
    return self.design.layout.groups(self.points)

  def point_inputs(self, alpha_t, alpha_c) -> Point:
    """The traced inputs of every world, stacked [W]; alpha_t/alpha_c: [L] numpy arrays."""
    return self.design.layout.point_inputs(self.points, alpha_t, alpha_c)

  def point_name(self, point: int) -> str:
    """A sweep point's label: "" when the run has one point."""
    return self.design.layout.point_name(self.points, point)
