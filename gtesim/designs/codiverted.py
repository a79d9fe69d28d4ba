"""User-corpus co-diverted (Su et al., WSDM 2024; Holtz, Brennan et al. 2025).

Videos are randomised to arms too, each with its per-repetition uniform below
`experiment.codiverted.p_items` (None = p, also along a p sweep); a user of arm a is shown only
arm-a videos (candidates are drawn among them, in every environment: replay and matrix keep one
Fenwick tree per video arm). `experiment.codiverted.training` "diverted" trains each arm's
models on its own arm's items, "pooled" on all. The estimate (difference of arm means)
compares treatment on its share of the catalogue with control on the rest: another
population than the global GTE, which studies score it against.
"""

import dataclasses
from typing import ClassVar

import jax
import numpy as np

from gtesim import prng
from gtesim.designs import pieces
from gtesim.designs.base import ABDesign, ab_pieces
from gtesim.designs.reporting import Reporting
from gtesim.errors import require


@dataclasses.dataclass(frozen=True)
class ArmVideos(pieces.Exposure):
  """Each video is in one arm; a user is shown its own arm's videos only (two classes)."""
  p_items: float | None = None  # P(video in treatment); None = p_treatment.
  data: ClassVar[str] = "video_arms"

  def rep_data(self, ds, train_user, user_enc, key):
    """[V] uniforms of the repetition's videos (their arm: below p_items is treatment)."""
    return np.asarray(jax.random.uniform(prng.stream(key, "assign_video"),
                                         (len(ds.video_ids),)))

  def video_treated(self, rep, videos, p):
    """Whether videos are in the treatment arm."""
    p_items = p if self.p_items is None else self.p_items
    return rep.designs[self.data][videos] < p_items

  def allowed(self, rep, point, z):
    def allowed(videos):
      treated = self.video_treated(rep, videos, point.p_treatment)
      return treated == z.reshape(z.shape + (1,) * (videos.ndim - 1))
    return allowed

  def user_class(self, arm):
    return arm

  def video_classes(self, rep, point, videos):
    """Class 0: the treatment arm's videos, 1: control's (a user draws from its arm's)."""
    treated = self.video_treated(rep, videos, point.p_treatment)
    return [treated, ~treated]


@dataclasses.dataclass(frozen=True)
class Codiverted(ABDesign):
  """See the module docstring."""
  reporting: ClassVar[Reporting] = Reporting(report_note=(
      "Co-diverted's estimate is of another population than the truth: each arm's users are "
      "shown only that arm's videos (a share p_items of the catalogue for treatment, the rest "
      "for control), so it measures treatment-on-its-half minus control-on-the-other-half; the "
      "table scores it against the global GTE over the whole catalogue, the effect a launch "
      "would have."))

  @classmethod
  def from_config(cls, name, config, ds=None):
    del ds
    cd = config.experiment.codiverted
    learning = pieces.OwnArm if cd.training == "diverted" else pieces.Learning
    return cls(name, **{**ab_pieces(config), "exposure": ArmVideos(cd.p_items),
                        "learning": learning(trains=config.sim.train_models)})

  @classmethod
  def check_config(cls, config, active):
    cd = config.experiment.codiverted
    require(cd.p_items is None or 0 < cd.p_items < 1, "experiment.codiverted.p_items",
            "must be None (= p_treatment) or in (0, 1).")
    require(cd.training in ("diverted", "pooled"), "experiment.codiverted.training",
            f"'{cd.training}': use 'diverted' or 'pooled'.")
