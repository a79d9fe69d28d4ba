"""Model classes: the ID-embedding rankers, their tables, hashing and sparse updates."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import compiled, small_sim_config
from gtesim.config import defaults
from gtesim.core import training
from gtesim.label_kinds import KINDS
from gtesim.models import Dims, LabelModel, MODEL_CLASSES, Pairs
from gtesim.models import ids
from gtesim.models import memory

DIMS = Dims(user_width=5, video_width=4, n_users=300, n_videos=500, user_cat=(3, 4),
            video_cat=(6,))


def _net(name, **overrides):
  section = defaults.get_config().labels.click
  section.mlp.hidden = (8,)
  section.wide_deep.hidden = (8,)
  section.two_tower.tower_hidden = (8,)
  section.two_tower.tower_dim = 4
  section.two_tower.id_dim = 3
  section.ids.learning_rate = 0.3
  for k, v in overrides.items():
    section[k] = v
  return MODEL_CLASSES.get(name)(section, dims=DIMS)


def _pairs(key, shape, candidates=None):
  """Random pairs: rows of `shape`, or users [shape] with `candidates` each."""
  ks = jax.random.split(key, 6)
  vshape = shape + ((candidates,) if candidates else ())
  return Pairs(jax.random.normal(ks[0], shape + (DIMS.user_width,)),
               jax.random.normal(ks[1], vshape + (DIMS.video_width,)),
               jax.random.randint(ks[2], shape, 0, DIMS.n_users),
               jax.random.randint(ks[3], vshape, 0, DIMS.n_videos),
               jax.random.randint(ks[4], shape + (2,), 0, 3),
               jax.random.randint(ks[5], vshape + (1,), 0, 6))


def _model(name, kind="binary", **overrides):
  loss = {"binary": "bce", "numerical": "logmae"}[kind]
  return LabelModel("y", KINDS[kind], loss, _net(name, **overrides), optax.adam(1e-2))


def test_sparse_rowwise_adagrad_equals_the_dense_update_and_leaves_other_rows_alone():
  n_rows, dim = 100_000, 8  # A table far larger than the rows one update touches.
  table = jax.random.normal(jax.random.key(0), (n_rows, dim))
  acc = jnp.full((n_rows,), 0.1)
  rows = jax.random.randint(jax.random.key(1), (2048,), 0, 3000)  # Repeats, as a batch has.
  grads = jax.random.normal(jax.random.key(2), (2048, dim))
  sparse_t, sparse_a = jax.jit(ids.sparse_rowwise_adagrad, static_argnums=(4, 5))(
      table, acc, rows, grads, 0.05, 1e-8)
  dense_grad = jnp.zeros_like(table).at[rows].add(grads)
  dense_t, dense_a = ids.dense_rowwise_adagrad(table, acc, dense_grad, 0.05, 1e-8)
  touched = np.zeros(n_rows, bool)
  touched[np.asarray(rows)] = True
  np.testing.assert_allclose(sparse_t[touched], dense_t[touched], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(sparse_a[touched], dense_a[touched], rtol=1e-5)
  np.testing.assert_array_equal(np.asarray(sparse_t)[~touched], np.asarray(table)[~touched])
  np.testing.assert_array_equal(np.asarray(sparse_a)[~touched], np.asarray(acc)[~touched])
  assert np.abs(np.asarray(sparse_t)[touched] - np.asarray(table)[touched]).max() > 1e-3


@pytest.mark.parametrize("name", ["two_tower", "wide_deep"])
def test_a_training_update_equals_the_dense_gradient_of_the_whole_tables(name):
  model = _model(name)
  params = model.init(jax.random.key(0), DIMS)
  # Non-zero rows, so that every part of the output depends on the tables.
  params["ids"] = {k: jax.random.normal(jax.random.key(i + 1), t.shape) * 0.3
                   for i, (k, t) in enumerate(params["ids"].items())}
  opt = model.init_optimizer(params)
  pairs = _pairs(jax.random.key(9), (64,))
  y = jax.random.bernoulli(jax.random.key(10), 0.4, (64, 1)).astype(jnp.float32)
  w = jnp.ones(64).at[:5].set(0.0)  # Rows that are not items touch rows with zero gradient.
  new, new_opt, _ = training.train_update((model,), (params,), (opt,), pairs, y, w, 59,
                                          jax.random.key(0),
                                          n_updates=1)

  def loss(p):
    return training.weighted_loss(model, p, pairs, y[:, 0], w, 59)

  g = jax.grad(loss)(params)
  net = model.net
  for table in params["ids"]:
    want, want_acc = ids.dense_rowwise_adagrad(params["ids"][table], opt["ids"][table],
                                               g["ids"][table], net.id_learning_rate,
                                               net.id_eps)
    np.testing.assert_allclose(new[0]["ids"][table], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new_opt[0]["ids"][table], want_acc, rtol=1e-5, atol=1e-7)
    untouched = np.all(np.asarray(g["ids"][table]) == 0, axis=-1)
    np.testing.assert_array_equal(np.asarray(new[0]["ids"][table])[untouched],
                                  np.asarray(params["ids"][table])[untouched])
  updates, _ = model.optimizer.update(g["dense"], opt["dense"], params["dense"])
  for a, b in zip(jax.tree.leaves(new[0]["dense"]),
                  jax.tree.leaves(optax.apply_updates(params["dense"], updates))):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ["mlp", "two_tower", "wide_deep"])
@pytest.mark.parametrize("kind", ["binary", "numerical"])
def test_scoring_candidates_equals_the_model_on_each_pair(name, kind):
  model = _model(name, kind)
  params = model.init(jax.random.key(0), DIMS)
  if "ids" in params:
    params["ids"] = {k: jax.random.normal(jax.random.key(i + 1), t.shape)
                     for i, (k, t) in enumerate(params["ids"].items())}
  pairs = _pairs(jax.random.key(3), (6,), candidates=5)
  rows = Pairs(jnp.broadcast_to(pairs.user_x[:, None], (6, 5, DIMS.user_width)), pairs.video_x,
               jnp.broadcast_to(pairs.user[:, None], (6, 5)), pairs.video,
               jnp.broadcast_to(pairs.user_cat[:, None], (6, 5, 2)), pairs.video_cat)
  np.testing.assert_allclose(model.score_pairs(params, pairs), model.apply(params, rows),
                             rtol=1e-5, atol=1e-5)
  head = model.net.with_head(model.init(jax.random.key(4), DIMS), 0.7, zero_kernel=True)
  np.testing.assert_allclose(model.apply(head, rows), 0.7, rtol=1e-6)


def test_exact_tables_index_ids_and_hashed_ones_collide_as_a_random_hash_would():
  exact = ids.IdTable.of(1000, budget=1000, buckets=64, salt=1)
  assert not exact.hashed and exact.rows == 1000 and exact.collision_rate() == 0.0
  np.testing.assert_array_equal(exact.row_of(jnp.arange(1000)), np.arange(1000))
  n, m = 20_000, 50_000
  table = ids.IdTable.of(n, budget=100, buckets=m, salt=7)
  rows = np.asarray(table.row_of(jnp.arange(n, dtype=jnp.int32)))
  assert rows.min() >= 0 and rows.max() < m
  # An id shares its row with another with probability 1 - (1 - 1/m)^(n-1); the ids are
  # nearly independent, so the rate's sd is about sqrt(q(1-q)/n) (inflated x2 for pairs).
  q = 1 - (1 - 1 / m) ** (n - 1)
  rate = table.collision_rate()
  assert abs(rate - q) < 4 * 2 * np.sqrt(q * (1 - q) / n), (rate, q)
  np.testing.assert_array_equal(table.row_of(np.arange(n, dtype=np.int32), np), rows)
  other = ids.IdTable.of(n, budget=100, buckets=m, salt=8)
  assert np.mean(np.asarray(other.row_of(jnp.arange(n, dtype=jnp.int32))) == rows) < 0.01


@pytest.mark.parametrize("name", ["two_tower", "wide_deep"])
def test_pretraining_the_embedding_models_lowers_the_validation_loss(tiny_root, name):
  # Validation rows are validation users x test videos (ids the tables have never seen): a
  # third of each, for a loss measured on ~500 rows.
  config = small_sim_config(tiny_root, **{"pretrain.n_interactions": 2000,
                                          "data.user_p_val": 0.3, "data.video_p_test": 0.3})
  for label in config.labels.values():
    label.model = name
  setup, _, fns = compiled(config)
  prod = fns.init(setup.env, setup.reps, setup.pretrain_rows)
  # An epoch of models that have all stopped trains nothing: the untrained models' loss (on
  # a copy: pretrain_epoch donates its input).
  _, m = fns.pretrain_epoch(setup.env, setup.reps, setup.pretrain_rows,
                            jax.tree.map(jnp.copy, prod).replace(
                                stopped=jnp.ones_like(prod.stopped)), jnp.int32(0))
  untrained = np.array([np.asarray(m[f"{l}/loss"]) for l in config.labels]).T  # [B, L]
  for e in range(4):
    prod, m = fns.pretrain_epoch(setup.env, setup.reps, setup.pretrain_rows, prod, jnp.int32(e))
    assert np.isfinite(np.asarray(m["train_loss"])[~np.asarray(prod.stopped)]).all()
  best = np.asarray(prod.best_loss)  # [B, L]
  assert (best < untrained).all(), (untrained, best)


def test_memory_per_world_counts_the_arrays_a_world_holds(tiny_root):
  config = small_sim_config(tiny_root, mode="pooling")
  config.labels.click.model = "two_tower"
  config.labels.play_time.model = "wide_deep"
  setup, sim, fns = compiled(config)
  prod = fns.init(setup.env, setup.reps, setup.pretrain_rows)
  from gtesim.driver import simulate  # pylint: disable=g-import-not-at-top
  from gtesim import designs  # pylint: disable=g-import-not-at-top
  points = simulate.point_inputs(config, designs.worlds_of(config))
  worlds = fns.start(setup.env, setup.reps, prod, points)
  held = sum(x.nbytes for x in jax.tree.leaves((worlds.params, worlds.opt_state)))
  per = memory.model_bytes(sim.spec.models, setup.static.dims)
  assert held == per * sim.spec.design.arms * config.repetitions



@dataclasses.dataclass(frozen=True)
class CountedRate:
  """A model class that learns by counting (docs/extending.md's skeleton): a binary label's
  logit is its video's smoothed weighted rate of y; no gradient, no optimizer."""
  n_videos: int
  prior: float = 1.0  # Pseudo-count at rate 1/2.

  def init(self, key, dims):
    del key, dims
    return {"sum": jnp.zeros(self.n_videos), "count": jnp.zeros(self.n_videos),
            "bias": jnp.zeros(())}

  def init_optimizer(self, params, optimizer):
    del params, optimizer
    return ()

  def _logit(self, s, c, bias):
    rate = (s + 0.5 * self.prior) / (c + self.prior)
    return jnp.log(rate) - jnp.log1p(-rate) + bias

  def apply(self, params, pairs, train=False, key=None):
    del train, key
    return self.score_gathered(self.dense_of(params), self.gather(params, pairs), pairs)

  def score_pairs(self, params, pairs):
    return self.apply(params, pairs)

  def update(self, params, opt_state, optimizer, loss_fn, pairs, y, weight, n, key):
    del optimizer, key
    loss = jnp.sum(weight * loss_fn(self.apply(params, pairs), y)) / jnp.maximum(n, 1)
    return ({"sum": params["sum"].at[pairs.video].add(weight * y),
             "count": params["count"].at[pairs.video].add(weight), "bias": params["bias"]},
            opt_state, loss)

  @staticmethod
  def dense_of(params):
    return {"bias": params["bias"]}

  @staticmethod
  def gather(params, pairs):
    return {"sum": params["sum"][pairs.video], "count": params["count"][pairs.video]}

  def score_gathered(self, dense, rows, pairs):
    del pairs
    return self._logit(rows["sum"], rows["count"], dense["bias"])

  @staticmethod
  def with_head(params, bias, zero_kernel=False):
    del bias, zero_kernel  # Its prior is its own.
    return params

  @staticmethod
  def flops(user_width, video_width, n_candidate):
    del user_width, video_width, n_candidate
    return {"score_user": 0, "row": 0}

  @staticmethod
  def describe():
    return {}


def test_a_model_class_that_learns_by_counting_runs_through_the_core(tiny_root, tmp_path,
                                                                     monkeypatch):
  """The core asks no model what kind it is: a counting class (no gradient, no optimizer
  state) trains through training.train_update and runs a whole simulation."""
  model = LabelModel("y", KINDS["binary"], "bce", CountedRate(DIMS.n_videos), optax.adam(1.0))
  params = model.init(jax.random.key(0), DIMS)
  pairs = _pairs(jax.random.key(1), (64,))
  y = (jax.random.uniform(jax.random.key(2), (64, 1)) < 0.3).astype(jnp.float32)
  weight = jnp.where(jnp.arange(64) < 50, 2.0, 0.0)  # The last 14 rows masked out.
  (new,), opt, loss = training.train_update((model,), (params,), (model.init_optimizer(params),),
                                            pairs, y, weight, 50, jax.random.key(3), 2)
  counts = np.zeros(DIMS.n_videos)
  np.add.at(counts, np.asarray(pairs.video)[:50], 4.0)  # Two updates of weight 2.
  np.testing.assert_allclose(new["count"], counts)
  # Before the first update every rate is 1/2: loss = sum(2 ln 2) / 50 = 2 ln 2.
  assert opt == ((),) and float(loss[0]) == pytest.approx(2 * np.log(2.0), rel=1e-5)

  monkeypatch.setitem(MODEL_CLASSES._entries, "counted_rate",  # pylint: disable=protected-access
                      lambda section, dims=None, **_: CountedRate(dims.n_videos))
  config = small_sim_config(tiny_root, mode="pooling", repetitions=1,
                            **{"labels.click.model": "counted_rate"})
  from gtesim.driver import simulate  # pylint: disable=g-import-not-at-top
  result = simulate.run(config, tmp_path)
  assert result["pretrain"]["models"]["click"] == {"model": "counted_rate", "tables": {}}
  assert np.isfinite(result["gte"]["click"]["mean"])
  final = result["metrics_final_and_at_step_0"]["T"]
  # Counting on the experiment's traffic sharpens the train videos' rates; the test videos,
  # never counted, stay at the prior rate 1/2 (loss ln 2, AUC 1/2).
  assert final["train/click/auc"] > final["train/click/auc@0"] > 0.5
  assert final["val/click/loss"] == pytest.approx(np.log(2.0), rel=1e-5)
