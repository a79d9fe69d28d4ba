"""`matrix`: replay's machinery on a fully observed users x videos matrix (KuaiRec's small
matrix): every user's row holds (almost) every video, so the candidates are the catalogue's
train videos the user has not been recommended yet, with their real outcomes. Refused when
the environment logs are not dense (on sparse logs it would silently be replay). Offers
staggered release (environments/release.py): every user's row holds the new videos too, so
a release makes a video a candidate for every user, as in a real catalogue."""

import dataclasses

from gtesim.environments.packed import PackedEnvironment
from gtesim.errors import InputError, require


@dataclasses.dataclass(frozen=True)
class Matrix(PackedEnvironment):
  """See the module docstring."""
  offers_release = True

  @classmethod
  def check_config(cls, config, active):
    super().check_config(config, active)
    require(0 <= config.sim.matrix_min_density <= 1, "sim.matrix_min_density",
            "must be in [0, 1].")

  @classmethod
  def check_data(cls, config, ds):
    density = ds.overview["env_density"]
    if density < config.sim.matrix_min_density:
      raise InputError(
          f"sim.environment = 'matrix' needs a fully observed matrix, but the environment logs "
          f"({', '.join(config.data.logs)} in {ds.folder}) hold outcomes for only "
          f"{100 * density:.1f}% of their {ds.overview['n_users']:,} users x "
          f"{ds.overview['n_videos']:,} videos (sim.matrix_min_density = "
          f"{config.sim.matrix_min_density}). Use 'replay' for sparse logs.")
