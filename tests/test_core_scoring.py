"""Scoring: per-arm blocked scores, and the MLP's factored first layer."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gtesim.core import scoring
from gtesim.label_kinds import KINDS
from gtesim.models import Dims, LabelModel, Pairs
from gtesim.models.mlp import MLPNet


def test_blocked_scores_score_each_user_with_its_own_arm():
  model = LabelModel("y", KINDS["binary"], "bce", MLPNet(hidden=(8,)), optax.sgd(1.0))
  params = tuple((model.init(jax.random.key(a), Dims(2, 3)),) for a in range(2))
  alpha = jnp.array([[1.5], [0.7]])
  b, k = 16, 3
  xu = jax.random.normal(jax.random.key(8), (b, 2))
  xv = jax.random.normal(jax.random.key(9), (b, k, 3))
  pairs = Pairs(xu, xv, jnp.arange(b), jnp.zeros((b, k), jnp.int32),
                jnp.zeros((b, 0), jnp.int32), jnp.zeros((b, k, 0), jnp.int32))
  for n_treated in (0, 1, 4, 7, 8, 15, 16):
    arm = jnp.asarray(np.r_[np.zeros(n_treated), np.ones(b - n_treated)].astype(np.int32))
    direct = jnp.stack([alpha[a, 0] * scoring.predictions((model,), params[a], pairs)[0]
                        for a in range(2)])
    for n_blocks in (4, 5, 16):  # 5 blocks do not divide the 16 users: the last is padded.
      got = scoring.blocked_scores((model,), params, alpha, pairs, arm, n_blocks)
      np.testing.assert_allclose(got, direct[arm, jnp.arange(b)], rtol=1e-6, atol=1e-7)


def test_pair_outputs_equal_the_model_on_concatenated_features():
  xu = jax.random.normal(jax.random.key(0), (6, 4))
  xv = jax.random.normal(jax.random.key(1), (6, 5, 3))
  x = jnp.concatenate([jnp.broadcast_to(xu[:, None], (6, 5, 4)), xv], axis=-1)
  for hidden in ((), (8,), (16, 8, 4)):
    model = LabelModel("y", KINDS["binary"], "bce", MLPNet(hidden, dropout=0.3), optax.sgd(1.0))
    params = model.init(jax.random.key(2), Dims(4, 3))
    none = jnp.zeros((6, 5, 0), jnp.int32)
    pairs = Pairs(xu, xv, jnp.arange(6), jnp.zeros((6, 5), jnp.int32), none[:, 0], none)
    rows = Pairs(x[..., :4], x[..., 4:], jnp.zeros((6, 5), jnp.int32),
                 jnp.zeros((6, 5), jnp.int32), none, none)
    np.testing.assert_allclose(model.score_pairs(params, pairs), model.apply(params, rows),
                               rtol=1e-5, atol=1e-6)
    # The video-only network (G on video features) sees the video part alone.
    video_only = MLPNet(hidden, video_only=True)
    p = video_only.init(jax.random.key(3), Dims(4, 3))
    np.testing.assert_allclose(video_only.apply(p, rows), video_only.module.apply(p, x[..., 4:]),
                               rtol=1e-6)
