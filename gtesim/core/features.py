"""Dense features of users and videos, built by gathers inside the compiled step."""

from gtesim.core.state import Env, RepData, Static
from gtesim.data import encoding
from gtesim.models import Pairs


def user_features(static: Static, env: Env, enc, users):
  f = env.features
  return encoding.dense(static.user_layout, enc, f.user_num[users], f.user_cat[users],
                        [m[users] for m in f.user_multi])


def video_features(static: Static, env: Env, enc, videos):
  f = env.features
  return encoding.dense(static.video_layout, enc, f.video_num[videos], f.video_cat[videos],
                        [m[videos] for m in f.video_multi])


def pairs(static: Static, env: Env, rep: RepData, users, videos) -> Pairs:
  """Pairs of users and videos: rows (users [...] and videos [...] of one shape) or users
  [b] with their candidates [b, k] (the user features then once per user)."""
  f = env.features
  return Pairs(user_features(static, env, rep.user_enc, users),
               video_features(static, env, rep.video_enc, videos), users, videos,
               f.user_cat[users], f.video_cat[videos])


def logged_rows(static: Static, env: Env, rep: RepData, users, page, col):
  """(Pairs, labels [..., L]) of logged rows (evaluation and pretraining rows)."""
  video = env.logs.page_video[page, col]
  return pairs(static, env, rep, users, video), env.logs.page_labels[page, col]
