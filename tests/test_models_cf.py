"""The counting model classes item_cf and user_cf (gtesim/models/cf.py) in gtesim's own
environments: the choice world's scores (the page's dense definitions), learning by counting
the positive rows a design trains on, pretraining that fills the matrix from the logs, per-arm
scoring, and the refusals (a numerical label, weighting, the weight model)."""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import choice_reference as ref
from conftest import compiled, small_sim_config
from gtesim import models
from gtesim.config import checks
from gtesim.core import scoring
from gtesim.driver import simulate
from gtesim.errors import InputError
from gtesim.label_kinds import KINDS
from gtesim.models import Dims, LabelModel, Pairs
from gtesim.models.cf import CountingCFNet

U, V = 30, 80


def _model(kind):
  return LabelModel("click", KINDS["binary"], "bce", CountingCFNet(Dims(1, 1, U, V), kind),
                    optax.sgd(1.0))


def _pairs(users, videos):
  return Pairs(jnp.zeros(users.shape + (1,)), jnp.zeros(videos.shape + (1,)),
               jnp.asarray(users, jnp.int32), jnp.asarray(videos, jnp.int32),
               jnp.zeros(users.shape + (0,), jnp.int32), jnp.zeros(videos.shape + (0,), jnp.int32))


def _matrix(gen):
  x = (gen.random((U, V)) < 0.1).astype(np.int8)
  x[:, 5] = 0  # A video nobody consumed: similarity 0.
  return x


@pytest.mark.parametrize("kind,dense", [("item_cf", ref.item_cf_scores),
                                        ("user_cf", ref.user_cf_scores)])
def test_scores_are_the_choice_worlds_and_pass_through_unsquashed(kind, dense):
  gen = np.random.default_rng(0)
  x = _matrix(gen)
  model = _model(kind)
  params = {"x": jnp.asarray(x)}
  users = np.array([0, 3, 3, 29, 7])
  videos = gen.integers(0, V, (5, 12))
  want = dense(x.astype(np.float64))[users[:, None], videos]
  got = np.asarray(jax.jit(model.score_pairs)(params, _pairs(users, videos)))
  np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-6)
  rows = np.asarray(model.apply(params, _pairs(users, videos[:, 0])))
  np.testing.assert_allclose(rows, want[:, 0], rtol=2e-6, atol=1e-6)
  np.testing.assert_array_equal(np.asarray(model.predict(jnp.asarray(got))), got)  # Unsquashed:
  high = jnp.array([20.0, 21.0])  # a sigmoid ties these at 1.0 in float32.
  assert float(KINDS["binary"].predict(high)[0]) == float(KINDS["binary"].predict(high)[1])
  assert float(model.predict(high)[0]) < float(model.predict(high)[1])


def test_learning_counts_the_trained_positive_rows_only():
  model = _model("item_cf")
  params = model.init(jax.random.key(0), None)
  opt = model.init_optimizer(params)
  assert params["x"].shape == (U, V) and params["x"].dtype == jnp.int8 and opt == ()
  users = np.array([1, 1, 2, 3, 4, 1])
  videos = np.array([7, 8, 7, 9, 10, 7])
  y = np.array([1.0, 0.0, 1.0, 1.0, 1.0, 1.0])
  weight = np.array([1.0, 1.0, 1.0, 0.0, 2.5, 1.0])  # Row 3 not trained on (the other arm).
  new, opt, loss = model.update(params, opt, _pairs(users, videos), jnp.asarray(y),
                                jnp.asarray(weight), 6, None)
  want = np.zeros((U, V), np.int8)
  want[[1, 2, 4], [7, 7, 10]] = 1  # (1, 7) twice: still 1.
  np.testing.assert_array_equal(np.asarray(new["x"]), want)
  # The loss before the update: every score 0, so BCE(0) = log 2 per weighted row.
  assert float(loss) == pytest.approx(np.log(2) * weight.sum() / 6, rel=1e-6)
  again, _, _ = model.update(new, opt, _pairs(users, videos), jnp.asarray(y),
                             jnp.asarray(weight), 6, None)
  np.testing.assert_array_equal(np.asarray(again["x"]), want)  # Idempotent.


def test_per_arm_scoring_gives_each_user_its_own_arms_cf_scores():
  gen = np.random.default_rng(2)
  arm_models = (_model("item_cf"),), (_model("user_cf"),)
  xs = [_matrix(gen), _matrix(gen)]
  params = tuple(({"x": jnp.asarray(x)},) for x in xs)
  users = np.arange(10)
  videos = gen.integers(0, V, (10, 6))
  arm = jnp.asarray([0] * 4 + [1] * 6)
  pairs = _pairs(users, videos)
  two = scoring.two_ranker_scores(arm_models, params, jnp.ones((2, 1)), pairs, arm)
  want = np.where(np.asarray(arm)[:, None] == 0,
                  ref.item_cf_scores(xs[0].astype(np.float64))[users[:, None], videos],
                  ref.user_cf_scores(xs[1].astype(np.float64))[users[:, None], videos])
  np.testing.assert_allclose(np.asarray(two), want, rtol=2e-6, atol=1e-6)
  # One model class in both arms (one ranker, its arms' own matrices): the blocked path.
  one = (_model("item_cf"),)
  blocked = scoring.blocked_scores(one, params, jnp.ones((2, 1)), pairs, arm, n_blocks=3)
  want = np.where(np.asarray(arm)[:, None] == 0,
                  ref.item_cf_scores(xs[0].astype(np.float64))[users[:, None], videos],
                  ref.item_cf_scores(xs[1].astype(np.float64))[users[:, None], videos])
  np.testing.assert_allclose(np.asarray(blocked), want, rtol=2e-6, atol=1e-6)


def _cf_config(root, **overrides):
  config = small_sim_config(root, **{"sim.environment": "latent", **overrides})
  config.arms.treatment.labels.click.model = "item_cf"
  config.labels.click.alpha_T = config.labels.click.alpha_C = 1.0
  config.labels.play_time.alpha_T = config.labels.play_time.alpha_C = 0.0
  return config


def test_pretraining_fills_the_matrix_with_the_logs_positive_rows(tiny_root):
  config = _cf_config(tiny_root)
  config.arms.control.labels.click.model = "user_cf"
  setup, sim, fns = compiled(config)
  prod = fns.init(setup.env, setup.reps, setup.pretrain_rows)
  prod, _ = fns.pretrain_epoch(setup.env, setup.reps, setup.pretrain_rows, prod, jnp.int32(0))
  click = list(config.labels).index("click")
  n_labels = len(config.labels)
  for b in range(config.repetitions):
    rows = jax.tree.map(lambda a, b=b: a[b], setup.pretrain_rows)
    video = setup.env.logs.page_video[rows.page, rows.col]
    y = setup.env.logs.page_labels[rows.page, rows.col][:, click]
    users = np.asarray(rows.user)
    want = np.zeros(sim.spec.static.dims[2:4], np.int8)
    pos = np.asarray(y) > 0
    want[users[pos], np.asarray(video)[pos]] = 1
    assert 0 < want.sum() < pos.size  # Some rows were clicks, not all.
    for r in range(2):  # Both rankers' click models count the same rows.
      x = np.asarray(prod.params[r * n_labels + click]["x"][b])
      np.testing.assert_array_equal(x, want)


def test_an_ab_run_with_cf_rankers_and_the_refusals(tiny_root, tmp_path):
  config = _cf_config(tiny_root, mode="pooling")
  result = simulate.run(config, tmp_path / "pooling")
  assert result["pretrain"]["models"]["treatment.click"]["model"] == "item_cf"
  assert result["pretrain"]["models"]["treatment.click"]["tables"]["consumption"][
      "columns"] > 0
  t, c = (np.asarray(result["arms"][a]["click"]["per_rep"]) for a in ("T", "C"))
  assert np.isfinite(result["gte"]["click"]["per_rep"]).all() and (t != c).all()
  weighting = _cf_config(tiny_root, mode="weighting")
  with pytest.raises(InputError, match=r"arms\.treatment\.labels\.click\.model.*counting"):
    checks.check(weighting)
  numerical = _cf_config(tiny_root)
  numerical.arms.control.labels.play_time.model = "user_cf"
  with pytest.raises(InputError, match=r"arms\.control\.labels\.play_time\.model.*binary"):
    checks.check(numerical)
  g = _cf_config(tiny_root)
  g.experiment.weighting.g.model = "item_cf"
  with pytest.raises(InputError, match=r"experiment\.weighting\.g\.model"):
    checks.check(g)
  assert models.counting_keys(config) == ["arms.treatment.labels.click.model"]


def test_a_study_refuses_the_aa_gap_when_the_arms_rank_with_different_models(tiny_root):
  from gtesim.config import defaults  # pylint: disable=g-import-not-at-top
  from gtesim.study import plan  # pylint: disable=g-import-not-at-top
  config = _cf_config(tiny_root)
  with config.unlocked():
    config.study = defaults.study_section()
  config.study.alpha_gaps = (0.0, 1.0)
  with pytest.raises(InputError, match=r"alpha_gaps holds 0.*arms\.\*\.labels\.click\.model"):
    plan.plan(config)
  config.study.alpha_gaps = (1.0,)
  assert all(job.config.sweep.points for job in plan.plan(config))


@pytest.mark.parametrize("pair", ["item_cf-user_cf", "item_cf-two_tower", "two_tower-mlp"])
def test_the_bridge_config_plans_each_pair(pair):
  """configs/study_bridge.py: each pair's arms rank with its two classes, by clicks alone."""
  import runpy  # pylint: disable=g-import-not-at-top
  from gtesim.study import plan  # pylint: disable=g-import-not-at-top
  path = pathlib.Path(__file__).resolve().parent.parent / "configs" / "study_bridge.py"
  config = runpy.run_path(str(path))["get_config"](pair)
  checks.check(config)
  treatment, control = pair.split("-")
  sections = [models.arm_label_sections(config, arm)["click"].model
              for arm in ("treatment", "control")]
  assert sections == [treatment, control] and models.n_rankers(config) == 2
  names = [job.name for job in plan.plan(config)]
  assert names == [f"truth-r{k}" for k in range(1, 6)] + list(config.study.designs)
