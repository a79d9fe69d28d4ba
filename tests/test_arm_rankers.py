"""Each arm has its own ranker (`arms.<arm>.labels.<name>.<key>`): GT runs the treatment's, GC
the control's, A/B arms start from their own production models, and a config without
overrides builds exactly one ranker."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pyarrow.parquet as pq
import pytest

from conftest import small_sim_config
from gtesim import models
from gtesim.config import checks
from gtesim.core import scoring
from gtesim.driver import simulate
from gtesim.errors import InputError
from gtesim.label_kinds import KINDS
from gtesim.models import Dims, LabelModel, Pairs
from gtesim.models.mlp import MLPNet

def _two_tower(section):
  section.model = "two_tower"
  section.two_tower.tower_hidden = (8,)
  section.two_tower.tower_dim = 4
  section.two_tower.id_dim = 4


def _rows(folder, table, **where):
  t = pq.read_table(folder / table).to_pydict()
  keep = [i for i in range(len(t["step"])) if all(t[k][i] == v for k, v in where.items())]
  return {k: np.asarray(v)[keep] for k, v in t.items()}


def _same(a, b, table, columns, **where):
  ra, rb = _rows(a, table, **where), _rows(b, table, **where)
  assert len(ra["step"]) > 0
  for c in columns:
    np.testing.assert_array_equal(ra[c], rb[c], err_msg=f"{table} {c} {where}")


def test_global_worlds_run_each_arms_ranker_bit_for_bit(tiny_root, tmp_path):
  both_tt = small_sim_config(tiny_root)
  _two_tower(both_tt.labels.play_time)
  mixed = small_sim_config(tiny_root)
  _two_tower(mixed.arms.treatment.labels.play_time)
  assert models.n_rankers(mixed) == 2 and models.n_rankers(both_tt) == 1
  runs = {}
  for name, config in (("mlp", small_sim_config(tiny_root)), ("tt", both_tt),
                       ("mixed", mixed)):
    runs[name] = simulate.run(config, tmp_path / name)
  steps = ["n_recs", "outcome_sum/click", "outcome_sum/play_time", "loss/click",
           "loss/play_time"]
  _same(tmp_path / "mixed", tmp_path / "tt", "steps.parquet", steps, world="GT")
  _same(tmp_path / "mixed", tmp_path / "mlp", "steps.parquet", steps, world="GC")
  evals = ["click/loss", "play_time/loss", "play_time/rel_error"]
  _same(tmp_path / "mixed", tmp_path / "tt", "metrics.parquet", evals, world="GT")
  _same(tmp_path / "mixed", tmp_path / "mlp", "metrics.parquet", evals, world="GC")
  # Both rankers are pretrained as they are in a run where they rank both arms.
  pre = runs["mixed"]["pretrain"]
  for label in ("click", "play_time"):
    assert pre["best_val_loss"][f"treatment.{label}"] == runs["tt"]["pretrain"][
        "best_val_loss"][label]
    assert pre["best_val_loss"][f"control.{label}"] == runs["mlp"]["pretrain"][
        "best_val_loss"][label]
  assert pre["models"]["treatment.play_time"]["model"] == "two_tower"
  assert pre["models"]["control.play_time"]["model"] == "mlp"
  assert runs["mixed"]["gc"] == runs["mlp"]["gc"] and runs["mixed"]["gt"] == runs["tt"]["gt"]
  assert runs["mixed"]["gt"] != runs["mlp"]["gt"]  # The override did change the ranker.


def test_ab_arms_start_from_their_own_production_models(tiny_root, tmp_path):
  configs = {"mlp": small_sim_config(tiny_root, mode="pooling"),
             "tt": small_sim_config(tiny_root, mode="pooling"),
             "mixed": small_sim_config(tiny_root, mode="pooling")}
  _two_tower(configs["tt"].labels.play_time)
  _two_tower(configs["mixed"].arms.treatment.labels.play_time)
  for name, config in configs.items():
    simulate.run(config, tmp_path / name)
  evals = ["click/loss", "play_time/loss", "play_time/rel_error"]
  _same(tmp_path / "mixed", tmp_path / "tt", "metrics.parquet", evals, world="T", step=0)
  _same(tmp_path / "mixed", tmp_path / "mlp", "metrics.parquet", evals, world="C", step=0)
  t = _rows(tmp_path / "mixed", "metrics.parquet", world="T", step=0)["play_time/loss"]
  c = _rows(tmp_path / "mixed", "metrics.parquet", world="C", step=0)["play_time/loss"]
  assert np.all(t != c)


def test_two_ranker_scores_equal_blocked_scores_for_one_ranker():
  model = LabelModel("y", KINDS["binary"], "bce", MLPNet(hidden=(8,)), optax.sgd(1.0))
  params = tuple((model.init(jax.random.key(a), Dims(2, 3)),) for a in range(2))
  alpha = jnp.array([[1.5], [0.7]])
  b, k = 16, 3
  pairs = Pairs(jax.random.normal(jax.random.key(8), (b, 2)),
                jax.random.normal(jax.random.key(9), (b, k, 3)), jnp.arange(b),
                jnp.zeros((b, k), jnp.int32), jnp.zeros((b, 0), jnp.int32),
                jnp.zeros((b, k, 0), jnp.int32))
  for n_treated in (0, 5, 16):
    arm = jnp.asarray(np.r_[np.zeros(n_treated), np.ones(b - n_treated)].astype(np.int32))
    got = scoring.two_ranker_scores(((model,), (model,)), params, alpha, pairs, arm)
    want = scoring.blocked_scores((model,), params, alpha, pairs, arm, 4)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_arm_overrides_are_checked_by_name(tiny_root):
  config = small_sim_config(tiny_root)
  config.arms.control.labels.click.model = "two_towr"
  with pytest.raises(InputError, match=r"arms\.control\.labels\.click\.model.*two_tower"):
    checks.check(config)
  config = small_sim_config(tiny_root)
  config.arms.treatment.labels.click.two_tower.tower_dim = 0
  with pytest.raises(InputError, match=r"arms\.treatment\.labels\.click\.two_tower\.tower_dim"):
    checks.check(config)
  config = small_sim_config(tiny_root)  # An override of a label the config does not declare.
  config.labels = type(config.labels)({"clk": config.labels.click})
  config.arms.treatment.labels.click.model = "two_tower"
  with pytest.raises(InputError, match=r"arms\.treatment\.labels\.click\.model.*clk"):
    checks.check(config)
  config = small_sim_config(tiny_root)
  with config.arms.treatment.labels.click.unlocked():
    config.arms.treatment.labels.click.alpha_T = 2.0  # Not a model key.
  with pytest.raises(InputError, match=r"arms\.treatment\.labels\.click\.alpha_T"):
    checks.check(config)


def test_a_run_with_two_rankers_resumes_to_the_same_result(tiny_root, tmp_path):
  def config(n_steps):
    c = small_sim_config(tiny_root, **{"sim.n_steps": n_steps})
    _two_tower(c.arms.treatment.labels.play_time)
    return c
  full = simulate.run(config(30), tmp_path / "full")
  simulate.run(config(20), tmp_path / "cut")  # Checkpointed at step 20: a tuple of groups.
  resumed = simulate.run(config(30), tmp_path / "cut", resume=True)
  for part in ("gte", "gt", "gc"):
    assert resumed[part] == full[part]
  for table in ("steps.parquet", "metrics.parquet"):
    assert (pq.read_table(tmp_path / "full" / table).to_pydict() ==
            pq.read_table(tmp_path / "cut" / table).to_pydict())
