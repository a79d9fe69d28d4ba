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


def init_weight_model(spec: SimSpec, rep: RepData):
  """(G's parameters,) under the weighting design, else ()."""
  if spec.weight_model is None:
    return ()
  key = jax.random.fold_in(rng.stream(rep.key, "init"), len(spec.models))
  return (spec.weight_model.init(key, spec.static.width),)


def init_opt_state(models, params):
  return tuple(m.optimizer.init(p) for m, p in zip(models, params))


def weight_models(spec: SimSpec):
  return () if spec.weight_model is None else (spec.weight_model,)


def epoch(spec: SimSpec, batch_size: int, env: Env, rep: RepData, rows: EvalRows, state,
          index):
  """One pass over the repetition's pretraining rows in shuffled minibatches.

  The weight model G (weighting design) learns Z ~ Bernoulli(p) drawn independently of x, as
  in production before the experiment. Its randomness is separate, so the label models come
  out the same under every design.

  Args:
    state: (label params, label opt states, G params, G opt states).

  Returns:
    (state, [L] mean training loss of the label models over the epoch).
  """
  n = rows.user.shape[0]
  n_batches = n // batch_size
  key = jax.random.fold_in(rng.stream(rep.key, "pretrain"), index)
  order = jax.random.permutation(jax.random.fold_in(key, 0), n)
  batches = order[:n_batches * batch_size].reshape(n_batches, batch_size)

  g_models = weight_models(spec)
  g_key = jax.random.fold_in(rng.stream(rep.key, "pretrain_weight"), index)

  def body(carry, item):
    i, batch = item
    p, o, gp, go = carry
    video = env.page_video[rows.page[batch], rows.col[batch]]
    x = pair_features(spec.static, env, rep, rows.user[batch], video)
    y = env.page_labels[rows.page[batch], rows.col[batch]]
    ones = jnp.ones(batch_size)
    p, o, loss = train_update(spec.models, p, o, x, y, ones, batch_size,
                              jax.random.fold_in(key, 1 + i), n_updates=1)
    if g_models:
      k = jax.random.fold_in(g_key, i)
      z = jax.random.bernoulli(jax.random.fold_in(k, 0), spec.design.p_treatment, (batch_size,))
      gp, go, _ = train_update(g_models, gp, go, x, z.astype(jnp.float32)[:, None], ones,
                               batch_size, jax.random.fold_in(k, 1), n_updates=1)
    return (p, o, gp, go), loss

  state, losses = lax.scan(body, tuple(state), (jnp.arange(n_batches), batches))
  return state, jnp.mean(losses, axis=0)
