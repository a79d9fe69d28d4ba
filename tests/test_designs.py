"""A/B designs: what each arm's models learn from, the weights, and A/A behaviour."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import small_sim_config
from gtesim import models, rng, simulation, step


def _setup(tiny_root, mode, **overrides):
  config = small_sim_config(tiny_root, mode=mode, **overrides)
  setup = simulation.build(config)
  fns = simulation.Compiled(setup.spec, config.sim.validate_every, config.pretrain.batch_size)
  pretrained = simulation._pretrain(config, setup, fns)
  alphas = jnp.asarray(simulation.world_alphas(config))
  return config, setup, fns, pretrained, alphas


def _run_chunk(setup, fns, pretrained, alphas, env):
  states = simulation._fresh_states(setup, fns, pretrained, alphas.shape[0])
  states, _ = fns.chunk(states, setup.reps, env, alphas, jnp.int32(0))
  return states


def test_splitting_treatment_models_never_see_control_outcomes(tiny_root):
  config, setup, fns, pretrained, alphas = _setup(tiny_root, "splitting")
  base = _run_chunk(setup, fns, pretrained, alphas, setup.env)
  # Control users (assignment "user") of repetition 0 and 1: perturb every label of their rows.
  owner = np.repeat(np.arange(len(setup.packed.n_pages)), setup.packed.n_pages)
  labels = np.asarray(setup.env.page_labels).copy()
  perturbed = []
  for b in range(config.repetitions):
    key = rng.stream(rng.rep_key(config.seed, config.rep_offset + b), "assign")
    z = np.array([jax.random.uniform(jax.random.fold_in(key, int(u))) <
                  config.experiment.p_treatment for u in range(len(setup.packed.n_pages))])
    perturbed.append(z)
  # Users control in every repetition get perturbed rows; others stay (both reps share env).
  control_everywhere = ~np.logical_or.reduce(perturbed)
  rows = control_everywhere[owner]
  labels[rows] = labels[rows] * 3.0 + 1.0
  env = setup.env._replace(page_labels=jnp.asarray(labels))
  out = _run_chunk(setup, fns, pretrained, alphas, env)
  t_base = jax.tree.leaves(base.params[0])
  t_out = jax.tree.leaves(out.params[0])
  for a, b in zip(t_base, t_out):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  # The control models did see the change.
  c_diff = [np.abs(np.asarray(a) - np.asarray(b)).max()
            for a, b in zip(jax.tree.leaves(base.params[1]), jax.tree.leaves(out.params[1]))]
  assert max(c_diff) > 0


def test_snapshot_parameters_never_change(tiny_root):
  config, setup, fns, pretrained, alphas = _setup(tiny_root, "snapshot")
  states = _run_chunk(setup, fns, pretrained, alphas, setup.env)
  for arm in range(2):
    for a, b in zip(jax.tree.leaves(states.params[arm]), jax.tree.leaves(pretrained[0])):
      np.testing.assert_array_equal(np.asarray(a)[:, 0], np.asarray(b))


def test_perfect_weight_model_gives_z_over_p():
  design = step.Design("weighting", p_treatment=0.2)
  z = jnp.array([1.0, 0.0, 1.0, 0.0])
  mask, weight = step.design_weights(design, z, jnp.ones(4, bool), g=z)
  np.testing.assert_allclose(weight[0], z / 0.2)
  np.testing.assert_allclose(weight[1], (1 - z) / 0.8)
  np.testing.assert_array_equal(mask, 1.0)
  clipped = step.design_weights(step.Design("weighting", 0.2, weight_clip=2.0), z,
                                jnp.ones(4, bool), g=z)[1]
  assert float(clipped.max()) == 2.0


def test_splitting_masks_each_arm_to_its_users():
  z = jnp.array([1.0, 0.0, 1.0, 0.0])
  rec_ok = jnp.array([True, True, False, True])
  mask, weight = step.design_weights(step.Design("splitting"), z, rec_ok)
  np.testing.assert_array_equal(mask, [[1, 0, 0, 0], [0, 1, 0, 1]])
  np.testing.assert_array_equal(weight, 1.0)


def test_trained_weight_model_reproduces_treatment_distribution():
  """x ~ N(+1, 1) under treatment, N(-1, 1) under control, p = 0.3: a G trained with BCE
  on pooled (x, Z) weights the pooled loss into the treatment-only loss."""
  p, n = 0.3, 20_000
  key = jax.random.key(0)
  kz, kx = jax.random.split(key)
  z = jax.random.bernoulli(kz, p, (n,))
  x = (jnp.where(z, 1.0, -1.0) + jax.random.normal(kx, (n,)))[:, None]
  g_model = models.LabelModel("weight", "binary", "bce", models.MLP(hidden=(16,)),
                              optax.adam(1e-2))
  params = (g_model.init(jax.random.key(1), 1),)
  opt = (g_model.optimizer.init(params[0]),)
  update = jax.jit(lambda p, o, xb, zb: step.train_update(
      (g_model,), p, o, xb, zb[:, None], jnp.ones(len(zb)), len(zb), jax.random.key(2), 1))
  for i in range(400):
    sl = slice((i * 1000) % n, (i * 1000) % n + 1000)
    params, opt, _ = update(params, opt, x[sl], z[sl].astype(jnp.float32))
  g = jax.nn.sigmoid(g_model.apply(params[0], x))
  true_g = p * jnp.exp(-0.5 * (x[:, 0] - 1) ** 2) / (
      p * jnp.exp(-0.5 * (x[:, 0] - 1) ** 2) + (1 - p) * jnp.exp(-0.5 * (x[:, 0] + 1) ** 2))
  assert float(jnp.abs(g - true_g).mean()) < 0.03
  _, weight = step.design_weights(step.Design("weighting", p), z.astype(jnp.float32),
                                  jnp.ones(n, bool), g=g)
  loss = (x[:, 0] - 0.5) ** 2  # Any per-row loss: its treatment-only mean is known.
  treated_only = float(loss[z].mean())
  assert abs(float(jnp.mean(weight[0] * loss)) - treated_only) < 0.05 * treated_only
  control_only = float(loss[~z].mean())
  assert abs(float(jnp.mean(weight[1] * loss)) - control_only) < 0.05 * control_only
  assert abs(float(jnp.mean(weight[0] * loss)) - float(loss.mean())) > 0.3  # Not trivial.


@pytest.mark.parametrize("mode", ["pooling", "splitting", "snapshot", "weighting"])
def test_aa_estimates_are_centred_on_zero(tiny_root, tmp_path, mode):
  config = small_sim_config(tiny_root, mode=mode, repetitions=8, **{"sim.n_steps": 20,
                                                                    "sim.batch_size": 16})
  for label in config.labels.values():
    label.alpha_T = label.alpha_C = 1.0 if label.type == "binary" else 1e-4
  result = simulation.run(config, tmp_path)
  for name in config.labels:
    est = np.array(result["gte"][name]["per_rep"])
    assert abs(est.mean()) < 3 * est.std(ddof=1) / np.sqrt(len(est)), (name, est)
    ci = np.array(result["gte"][name]["ci95_per_rep"])
    assert ci.shape == (8, 2) and (ci[:, 0] <= est).all() and (est <= ci[:, 1]).all()
  assert result["mode"] == mode
