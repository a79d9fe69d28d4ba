"""The design interface (SPEC §5): a name, five pieces and three declarations.

A design is a choice of pieces (designs/pieces.py), one per job: who is treated
(`assignment`), what each arm's users may be shown (`exposure`), what each arm's models learn
from (`learning`), which steps count (`counting`) and the randomisation unit of the variance
(`unit`). The compiled step calls the pieces; the host reads the declarations: `layout` (its
worlds, designs/layouts.py), `reporting` (what the outputs say of it, designs/reporting.py)
and `study_extra_jobs`. A design module composes its pieces in `from_config` and checks its own
config keys in `check_config`; most designs only pick pieces.

`GlobalMode` runs worlds of one arm each (GT ranks with alpha_T, GC with alpha_C) for the
true GTE. `ABDesign` runs one world per sweep point with two arms, 0 = treatment and
1 = control; its pieces default to the pooling design's (user assignment, every video, pooled
training, every step, users as the units).
"""

import dataclasses
from typing import ClassVar

from gtesim.designs import layouts
from gtesim.designs import pieces
from gtesim.designs.reporting import Reporting
from gtesim.errors import require
from gtesim.stats import estimators


@dataclasses.dataclass(frozen=True)
class Design:
  """What every design is (see the module docstring and docs/extending.md)."""
  name: str  # The registry name (config key `mode`).
  assignment: pieces.Assignment = pieces.Users()
  exposure: pieces.Exposure = pieces.Exposure()
  learning: pieces.Learning = pieces.Learning()
  counting: pieces.Counting = pieces.Counting()
  unit: pieces.Unit = pieces.UserUnit()

  arms: ClassVar[int] = 2
  layout: ClassVar = layouts.ABLayout()  # Its worlds on the host (designs/layouts.py).
  reporting: ClassVar[Reporting] = Reporting()  # What it declares for the outputs.

  @classmethod
  def from_config(cls, name: str, config, ds=None) -> "Design":
    """The design of a config (`ds`: the dataset, where a static size depends on it)."""
    raise NotImplementedError

  @classmethod
  def check_config(cls, config, active: bool) -> None:
    """Refuses bad values of the design's own config keys (`active`: it is the run's mode)."""

  @classmethod
  def study_extra_jobs(cls, config) -> list:
    """[(job name, {config key: value}[, "main"])] a study runs beside the design itself: at
    every point of the design, or with "main" at the main point and the A/A only."""
    return []

  @property
  def pieces(self) -> tuple:
    return (self.assignment, self.exposure, self.learning, self.counting, self.unit)

  @property
  def data_pieces(self) -> dict:
    """{RepData.designs key: the piece that builds it} of the pieces with a set-up."""
    return {p.data: p for p in self.pieces if p.data}


@dataclasses.dataclass(frozen=True)
class GlobalMode(Design):
  """Global mode: a GT world at every sweep point (treatment alphas at that alpha gap) and
  one GC world shared by every point (alpha_C does not depend on the gap); every user is
  treated, nothing is tallied."""
  assignment: pieces.Assignment = pieces.Everyone()
  unit: pieces.Unit = pieces.Unit()
  arms: ClassVar[int] = 1
  layout: ClassVar = layouts.GlobalLayout()

  @classmethod
  def from_config(cls, name, config, ds=None):
    del ds
    return cls(name, learning=pieces.Learning(trains=config.sim.train_models))

  @classmethod
  def check_config(cls, config, active):
    if active:
      require(not config.sweep.p_treatment, "sweep.p_treatment",
              "global mode has no treatment probability (every user of a world gets the same "
              "policy); sweep alpha_gap, or run an A/B design.")
      for field in ("epsilon", "temperature"):
        require(len(config.sweep[field]) <= 1, f"sweep.{field}",
                "global mode's GC world is shared by every point, so it cannot sweep "
                f"exploration: run one global job per value of sim.{field}.")


@dataclasses.dataclass(frozen=True)
class ABDesign(Design):
  """A two-arm experiment; its pieces default to pooling's (see the module docstring)."""

  @classmethod
  def from_config(cls, name, config, ds=None):
    del ds
    return cls(name, **ab_pieces(config))


def ab_pieces(config) -> dict:
  """The pooling design's configured pieces: `experiment.assignment`, `sim.train_models`, and
  the users' pre-experiment covariate where an estimator of estimator.names needs it."""
  return {"assignment": pieces.Users(config.experiment.assignment),
          "learning": pieces.Learning(trains=config.sim.train_models),
          "unit": pieces.UserUnit(covariate=estimators.needed(config, "covariate"))}
