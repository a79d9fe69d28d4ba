"""Pooling: both arms' models train on every new item, unweighted (ABDesign's pieces)."""

import dataclasses

from gtesim.designs.base import ABDesign


@dataclasses.dataclass(frozen=True)
class Pooling(ABDesign):
  """Users treated with probability p; both arms train on all of the step's items."""
