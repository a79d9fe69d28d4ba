"""A/B designs: what each arm's models learn from, the weights, and A/A behaviour."""

import dataclasses
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import compiled, small_sim_config
from gtesim import designs
from gtesim import prng
from gtesim.core import training
from gtesim.config import defaults
from gtesim.designs import cluster
from gtesim.designs import pieces
from gtesim.designs.base import ABDesign, ab_pieces
from gtesim.designs.weighting import arm_weights
from gtesim.driver import simulate
from gtesim.label_kinds import KINDS
from gtesim.models import Dims, LabelModel, Pairs
from gtesim.models.mlp import MLPNet


def _start(tiny_root, mode, **overrides):
  config = small_sim_config(tiny_root, mode=mode, **overrides)
  setup, _, fns = compiled(config)
  prod, _ = simulate.pretrain_production(config, setup, fns)
  points = simulate.point_inputs(config, designs.worlds_of(config))
  return config, setup, fns, prod, points


def _chunk(setup, fns, prod, points, env):
  worlds = fns.start(setup.env, setup.reps, prod, points)
  worlds, _ = fns.chunk(env, setup.reps, points, worlds, jnp.int32(0))
  return worlds


def test_splitting_treatment_models_never_see_control_outcomes(tiny_root):
  config, setup, fns, prod, points = _start(tiny_root, "splitting")
  base = _chunk(setup, fns, prod, points, setup.env)
  owner = np.repeat(np.arange(len(setup.packed.n_pages)), setup.packed.n_pages)
  labels = np.asarray(setup.env.logs.page_labels).copy()
  treated = []
  for b in range(config.repetitions):
    key = prng.stream(prng.rep_key(config.seed, config.rep_offset + b), "assign")
    treated.append(np.array([jax.random.uniform(jax.random.fold_in(key, int(u))) <
                             config.experiment.p_treatment
                             for u in range(len(setup.packed.n_pages))]))
  # Users in control in every repetition get perturbed rows (both repetitions share env).
  rows = (~np.logical_or.reduce(treated))[owner]
  labels[rows] = labels[rows] * 3.0 + 1.0
  logs = setup.env.logs._replace(page_labels=jnp.asarray(labels))
  out = _chunk(setup, fns, prod, points, setup.env._replace(logs=logs))
  for a, b in zip(jax.tree.leaves(base.params[0]), jax.tree.leaves(out.params[0])):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  c_diff = [np.abs(np.asarray(a) - np.asarray(b)).max()
            for a, b in zip(jax.tree.leaves(base.params[1]), jax.tree.leaves(out.params[1]))]
  assert max(c_diff) > 0  # The control models did see the change.


@dataclasses.dataclass(frozen=True)
class FromStep(pieces.Counting):
  """docs/extending.md's new piece: the estimate counts steps from `first` on."""
  first: int = 0

  def counted(self, t):
    return t >= self.first


@dataclasses.dataclass(frozen=True)
class ClusterSplit(ABDesign):
  """docs/extending.md's sketch: cluster assignment, data-diverted learning, and a piece of
  its own (FromStep)."""

  @classmethod
  def from_config(cls, name, config, ds=None):
    clusters = cluster.Clusters.of(config)  # Its settings: experiment.cluster.*.
    n_units = None if ds is None else clusters.n_units(ds)
    return cls(name, **{**ab_pieces(config), "assignment": clusters,
                        "learning": pieces.OwnArm(trains=config.sim.train_models),
                        "counting": FromStep(first=3),
                        "unit": cluster.ClusterUnit(n_units)})

  check_config = cluster.Cluster.check_config


def test_a_design_composed_of_other_designs_pieces_does_each_pieces_job(tiny_root,
                                                                        monkeypatch):
  """Whole clusters are treated, the treatment models never see control users' outcomes, and
  the first three steps do not count."""
  monkeypatch.setitem(designs.DESIGNS._entries, "cluster_split", ClusterSplit)
  config, setup, fns, prod, points = _start(tiny_root, "cluster_split")
  design = designs.make(config, setup.ds)
  assert design.data_pieces == {design.assignment.data: design.assignment}
  worlds = fns.start(setup.env, setup.reps, prod, points)
  base, steps = fns.chunk(setup.env, setup.reps, points, worlds, jnp.int32(0))
  n_recs = np.asarray(steps.n_recs)  # [B, W, T, A]
  assert (n_recs[:, :, :3] == 0).all() and (n_recs[:, :, 3:].sum((0, 1, 3)) > 0).all()
  owner = np.repeat(np.arange(len(setup.packed.n_pages)), setup.packed.n_pages)
  users = jnp.arange(len(setup.packed.n_pages))
  treated = []
  for b in range(config.repetitions):
    rep = jax.tree.map(lambda x: x[b], setup.reps_host)
    z = np.asarray(design.assignment.assign(rep, users, None, config.experiment.p_treatment, 0))
    clusters = np.asarray(rep.designs[design.assignment.data])
    assert all(len(set(z[clusters == c])) == 1 for c in set(clusters))  # One Z per cluster.
    treated.append(z)
  control = ~np.logical_or.reduce(treated)
  assert 0 < control.mean() < 1
  labels = np.asarray(setup.env.logs.page_labels).copy()
  labels[control[owner]] = labels[control[owner]] * 3.0 + 1.0
  logs = setup.env.logs._replace(page_labels=jnp.asarray(labels))
  out = _chunk(setup, fns, prod, points, setup.env._replace(logs=logs))
  for a, b in zip(jax.tree.leaves(base.params[0]), jax.tree.leaves(out.params[0])):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert max(np.abs(np.asarray(a) - np.asarray(b)).max()
             for a, b in zip(jax.tree.leaves(base.params[1]), jax.tree.leaves(out.params[1]))) > 0
  evals = fns.evaluate(setup.env, setup.reps, out)
  assert {"user_var", "unit_var", "unit_df", "unit_count"} <= set(evals)


def test_snapshot_parameters_never_change(tiny_root):
  _, setup, fns, prod, points = _start(tiny_root, "snapshot")
  worlds = _chunk(setup, fns, prod, points, setup.env)
  for arm in range(2):
    for a, b in zip(jax.tree.leaves(worlds.params[arm]), jax.tree.leaves(prod.best_params)):
      np.testing.assert_array_equal(np.asarray(a)[:, 0], np.asarray(b))


@pytest.mark.parametrize("features", ["all", "video"])
def test_weight_model_starts_at_p_and_sees_the_declared_features(tiny_root, features):
  config, setup, fns, prod, points = _start(
      tiny_root, "weighting", **{"sweep.p_treatment": (0.2, 0.7),
                                 "experiment.weighting.features": features})
  worlds = fns.start(setup.env, setup.reps, prod, points)
  kernel = np.asarray(worlds.design.learning.g_params[0]["params"]["Dense_0"]["kernel"])  # [B, W, d, h]
  width = setup.static.width if features == "all" else setup.static.video_layout.width
  assert kernel.shape[2] == width
  last = worlds.design.learning.g_params[0]["params"][
      f"Dense_{len(config.experiment.weighting.g.mlp.hidden)}"]
  np.testing.assert_array_equal(np.asarray(last["kernel"]), 0.0)
  g = jax.nn.sigmoid(np.asarray(last["bias"]))[..., 0]  # [B, W]: G(x) for every x.
  np.testing.assert_allclose(g, [[0.2, 0.7]] * config.repetitions, rtol=1e-6)


def test_perfect_weight_model_gives_z_over_p():
  z = jnp.array([True, False, True, False])
  g = z.astype(jnp.float32)
  weight = arm_weights(g, 0.2)
  np.testing.assert_allclose(weight[0], g / 0.2)
  np.testing.assert_allclose(weight[1], (1 - g) / 0.8)
  assert float(arm_weights(g, 0.2, clip=2.0).max()) == 2.0


def test_splitting_masks_each_arm_to_its_users_and_pooling_trains_both_on_all():
  z = jnp.array([True, False, True, False])
  rec_ok = jnp.array([True, True, False, True])
  config = defaults.get_config()
  config.mode = "splitting"
  spec = SimpleNamespace(design=designs.make(config))
  assert isinstance(spec.design.learning, pieces.OwnArm)
  _, mask, weight, metrics = spec.design.learning.weights(spec, (), None, None, None, z, rec_ok,
                                                          None)
  np.testing.assert_array_equal(mask, [[1, 0, 0, 0], [0, 1, 0, 1]])
  np.testing.assert_array_equal(weight, 1.0)
  assert metrics == {}
  config.mode = "pooling"
  spec = SimpleNamespace(design=designs.make(config))
  _, mask, weight, _ = spec.design.learning.weights(spec, (), None, None, None, z, rec_ok, None)
  np.testing.assert_array_equal(mask, [[1, 1, 0, 1], [1, 1, 0, 1]])
  np.testing.assert_array_equal(weight, 1.0)


def test_assignment_is_monotone_in_p_and_has_the_right_rate():
  """Every p of a sweep compares the same per-user uniforms with p: treated at p is a
  subset of treated at any larger p, and the share treated is p."""
  users = jnp.arange(20_000)
  rep = SimpleNamespace(key=jax.random.key_data(prng.rep_key(0, 0)))
  z = {p: np.asarray(pieces.Users("user").assign(rep, users, None, p, 0)) for p in (0.1, 0.5, 0.9)}
  assert (z[0.1] <= z[0.5]).all() and (z[0.5] <= z[0.9]).all()
  for p, zp in z.items():
    assert abs(zp.mean() - p) < 4 * np.sqrt(p * (1 - p) / len(users))


def test_trained_weight_model_reproduces_treatment_distribution():
  """x ~ N(+1, 1) under treatment, N(-1, 1) under control, p = 0.3: a G trained with BCE
  on pooled (x, Z) weights the pooled loss into the treatment-only loss."""
  p, n = 0.3, 20_000
  kz, kx = jax.random.split(jax.random.key(0))
  z = jax.random.bernoulli(kz, p, (n,))
  x = (jnp.where(z, 1.0, -1.0) + jax.random.normal(kx, (n,)))[:, None]
  g_model = LabelModel("weight", KINDS["binary"], "bce", MLPNet(hidden=(16,)),
                       optax.adam(1e-2))
  params = (g_model.init(jax.random.key(1), Dims(0, 1)),)
  opt = (g_model.optimizer.init(params[0]),)

  def pairs(xb):  # The pairs' features: x as the video part, no user part.
    return Pairs(jnp.zeros((len(xb), 0)), xb, jnp.zeros(len(xb), jnp.int32),
                 jnp.zeros(len(xb), jnp.int32), jnp.zeros((len(xb), 0), jnp.int32),
                 jnp.zeros((len(xb), 0), jnp.int32))

  update = jax.jit(lambda p, o, xb, zb: training.train_update(
      (g_model,), p, o, pairs(xb), zb[:, None], jnp.ones(len(zb)), len(zb), jax.random.key(2),
      1))
  for i in range(400):
    sl = slice((i * 1000) % n, (i * 1000) % n + 1000)
    params, opt, _ = update(params, opt, x[sl], z[sl].astype(jnp.float32))
  g = jax.nn.sigmoid(g_model.apply(params[0], pairs(x)))
  true_g = p * jnp.exp(-0.5 * (x[:, 0] - 1) ** 2) / (
      p * jnp.exp(-0.5 * (x[:, 0] - 1) ** 2) + (1 - p) * jnp.exp(-0.5 * (x[:, 0] + 1) ** 2))
  assert float(jnp.abs(g - true_g).mean()) < 0.03
  weight = arm_weights(g, p)
  loss = (x[:, 0] - 0.5) ** 2  # Any per-row loss: its treatment-only mean is known.
  treated_only = float(loss[z].mean())
  assert abs(float(jnp.mean(weight[0] * loss)) - treated_only) < 0.05 * treated_only
  control_only = float(loss[~z].mean())
  assert abs(float(jnp.mean(weight[1] * loss)) - control_only) < 0.05 * control_only
  assert abs(float(jnp.mean(weight[0] * loss)) - float(loss.mean())) > 0.3  # Not trivial.


@pytest.mark.parametrize("mode", designs.AB_DESIGNS)
def test_aa_estimates_are_centred_on_zero(tiny_root, tmp_path, mode):
  config = small_sim_config(tiny_root, mode=mode, repetitions=8,
                            **{"sim.n_steps": 20, "sim.batch_size": 16,
                               "experiment.cluster.n": 6, "experiment.switchback.every": 2,
                               "experiment.switchback.burn_in": 0})
  for label in config.labels.values():
    label.alpha_T = label.alpha_C = 1.0 if label.type == "binary" else 1e-4
  result = simulate.run(config, tmp_path)
  for name in config.labels:
    est = np.array(result["gte"][name]["per_rep"])
    assert abs(est.mean()) < 3 * est.std(ddof=1) / np.sqrt(len(est)), (name, est)
    # Switchback: a block of consecutive steps may hold one arm only (batch SE undefined).
    methods = ["welch", "user"] + (["batch"] if mode != "switchback" else []) + (
        ["unit"] if mode in ("cluster", "switchback") else [])
    for method in methods:
      ci = np.array(result["gte"][name]["ci95_per_rep"][method], np.float64)
      # The unit SE is undefined where an arm has fewer than 2 units (6 clusters, p = 0.5).
      ok = np.isfinite(ci).all(1) if method == "unit" else np.ones(8, bool)
      assert ci.shape == (8, 2) and ok.sum() >= 4, (method, ci)
      assert (ci[ok, 0] <= est[ok]).all() and (est[ok] <= ci[ok, 1]).all()
  assert result["mode"] == mode
