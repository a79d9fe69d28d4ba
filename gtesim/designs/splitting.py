"""Splitting (data-diverted): each arm's models train on their own arm's users' items only."""

import dataclasses

from gtesim.designs import pieces
from gtesim.designs.base import ABDesign, ab_pieces


@dataclasses.dataclass(frozen=True)
class Splitting(ABDesign):
  """Treatment models learn from Z = 1 data only, control models from Z = 0 data only."""

  @classmethod
  def from_config(cls, name, config, ds=None):
    del ds
    return cls(name, **{**ab_pieces(config),
                        "learning": pieces.OwnArm(trains=config.sim.train_models)})
