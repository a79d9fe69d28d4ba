"""Per-repetition splits: validation users and test videos (SPEC §2 "Splits")."""

import dataclasses

import jax
import numpy as np

from gtesim import prng


@dataclasses.dataclass(frozen=True)
class Split:
  train_user: np.ndarray  # [U] bool: users the simulation recommends to.
  train_video: np.ndarray  # [V] bool: videos the simulation may recommend.

  @property
  def val_user(self):
    return ~self.train_user

  @property
  def test_video(self):
    """Videos validation draws from: the test videos, or all videos when none are held out."""
    return ~self.train_video if (~self.train_video).any() else np.ones_like(self.train_video)


def split(key, n_users: int, n_videos: int, user_p_val: float, video_p_test: float,
          env_user=None) -> Split:
  """A fraction user_p_val of users (rounded) validate; video_p_test of videos are test.

  With `env_user` ([U] bool: users with environment rows), the fraction is taken among those
  users and among the others separately, so every repetition has as many train users in the
  environment.
  """
  k_user, k_video = jax.random.split(prng.stream(key, "split"))
  order = np.asarray(jax.random.permutation(k_user, n_users))
  train_user = np.ones(n_users, bool)
  groups = [order] if env_user is None else [order[env_user[order]], order[~env_user[order]]]
  for members in groups:
    train_user[members[:int(round(user_p_val * len(members)))]] = False
  train_video = np.ones(n_videos, bool)
  train_video[np.asarray(jax.random.permutation(k_video, n_videos))[
      :int(round(video_p_test * n_videos))]] = False
  return Split(train_user, train_video)
