"""Pretraining the production models (SPEC §3) on logged train-user x train-video rows."""

import jax
import jax.numpy as jnp
from jax import lax

from gtesim import rng
from gtesim.device_data import Env, EvalRows, RepData, pair_features
from gtesim.step import SimSpec, train_update


def init_params(spec: SimSpec, env: Env, rep: RepData, rows: EvalRows):
  """Fresh parameters of every label model for one repetition.

  A numerical head starts with its output bias at the median of log1p(y) over the
  pretraining rows (the logMAE minimizer), so it need not first climb from 0 to ~10.
  """
  key = rng.stream(rep.key, "init")
  y = env.page_labels[rows.page, rows.col]
  out = []
  for l, m in enumerate(spec.models):
    params = m.init(jax.random.fold_in(key, l), spec.static.width)
    if m.kind == "numerical":
      last = f"Dense_{len(m.module.hidden)}"
      bias = jnp.full_like(params["params"][last]["bias"], jnp.median(jnp.log1p(y[:, l])))
      params = {"params": {**params["params"], last: {**params["params"][last], "bias": bias}}}
    out.append(params)
  return tuple(out)


def init_opt_state(spec: SimSpec, params):
  return tuple(m.optimizer.init(p) for m, p in zip(spec.models, params))


def epoch(spec: SimSpec, batch_size: int, env: Env, rep: RepData, rows: EvalRows, params,
          opt_state, index):
  """One pass over the repetition's pretraining rows in shuffled minibatches.

  Returns:
    (params, opt_state, [L] mean training loss over the epoch).
  """
  n = rows.user.shape[0]
  n_batches = n // batch_size
  key = jax.random.fold_in(rng.stream(rep.key, "pretrain"), index)
  order = jax.random.permutation(jax.random.fold_in(key, 0), n)
  batches = order[:n_batches * batch_size].reshape(n_batches, batch_size)

  def body(carry, item):
    i, batch = item
    p, o = carry
    video = env.page_video[rows.page[batch], rows.col[batch]]
    x = pair_features(spec.static, env, rep, rows.user[batch], video)
    y = env.page_labels[rows.page[batch], rows.col[batch]]
    p, o, loss = train_update(spec, p, o, x, y, jnp.ones(batch_size), batch_size,
                              jax.random.fold_in(key, 1 + i), n_updates=1)
    return (p, o), loss

  (params, opt_state), losses = lax.scan(body, (params, opt_state),
                                         (jnp.arange(n_batches), batches))
  return params, opt_state, jnp.mean(losses, axis=0)
