"""Per-repetition splits: validation users and test videos (SPEC §2 "Splits")."""

import dataclasses

import jax
import numpy as np

from gtesim import rng


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


def split(key, n_users: int, n_videos: int, user_p_val: float, video_p_test: float) -> Split:
  """A fraction user_p_val of users (rounded) validate; video_p_test of videos are test."""
  k_user, k_video = jax.random.split(rng.stream(key, "split"))
  train_user = np.ones(n_users, bool)
  train_user[np.asarray(jax.random.permutation(k_user, n_users))[
      :int(round(user_p_val * n_users))]] = False
  train_video = np.ones(n_videos, bool)
  train_video[np.asarray(jax.random.permutation(k_video, n_videos))[
      :int(round(video_p_test * n_videos))]] = False
  return Split(train_user, train_video)
