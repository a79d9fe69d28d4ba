"""Snapshot: the models are frozen at the production state for the whole experiment."""

import dataclasses
from typing import ClassVar

from gtesim.designs import pieces
from gtesim.designs.base import ABDesign, ab_pieces
from gtesim.designs.reporting import Reporting
from gtesim.errors import require


@dataclasses.dataclass(frozen=True)
class Snapshot(ABDesign):
  """Both arms rank with the pretrained models; nothing trains (losses are still reported).
  Studies also score it against the truth with frozen models."""
  reporting: ClassVar[Reporting] = Reporting(scored_against_frozen_truth=True)

  @classmethod
  def from_config(cls, name, config, ds=None):
    del ds
    return cls(name, **{**ab_pieces(config), "learning": pieces.Learning(trains=False)})

  @classmethod
  def check_config(cls, config, active):
    if active:
      require(config.sim.train_models, "sim.train_models",
              "the snapshot design already freezes the models; leave it True.")
