"""Pretraining: early stopping on the validation loss, the production model it leaves."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import compiled, small_sim_config
from gtesim.driver import simulate


def test_pretraining_stops_on_a_plateau_and_keeps_the_best_epoch(tiny_root, tmp_path):
  config = small_sim_config(tiny_root, **{"pretrain.max_epochs": 40, "pretrain.patience": 2,
                                          "pretrain.batch_size": 64})
  result = simulate.run(config, tmp_path)
  pre = result["pretrain"]
  assert pre["rows"] == 512 and result["experiment_rows_per_world"] == 20 * 8
  assert pre["epochs_run"] < 40
  for label in config.labels:
    assert all(pre["converged"][label])
    best = np.array(pre["best_epoch"][label])
    train = np.array(pre["curve"]["train_loss"][label], np.float64)  # [E, B]
    for b, e in enumerate(best):
      # Stopped `patience` epochs after its best; no training after that (NaN loss).
      assert np.isfinite(train[:e + 2, b]).all() and np.isnan(train[e + 2:, b]).all()
    val = np.array(pre["curve"]["val"][f"{label}/loss"], np.float64)
    np.testing.assert_allclose(val[best - 1, np.arange(len(best))],
                               pre["best_val_loss"][label], rtol=1e-6)
    # Every world starts from the best epoch's model: its validation loss at step 0.
    at0 = result["metrics_final_and_at_step_0"]["GT"][f"val/{label}/loss@0"]
    assert at0 == pytest.approx(np.mean(pre["best_val_loss"][label]), rel=1e-5)


def test_a_stopped_model_does_not_change(tiny_root):
  config = small_sim_config(tiny_root)
  setup, _, fns = compiled(config)
  prod = fns.init(setup.env, setup.reps, setup.pretrain_rows)
  prod = prod.replace(stopped=jnp.asarray([[True, False]] * config.repetitions))
  before = jax.tree.map(np.asarray, prod.params)
  after, metrics = fns.pretrain_epoch(setup.env, setup.reps, setup.pretrain_rows, prod,
                                      jnp.int32(0))
  for a, b in zip(jax.tree.leaves(before[0]), jax.tree.leaves(after.params[0])):
    np.testing.assert_array_equal(a, np.asarray(b))
  assert any(np.abs(a - np.asarray(b)).max() > 0
             for a, b in zip(jax.tree.leaves(before[1]), jax.tree.leaves(after.params[1])))
  assert np.isnan(np.asarray(metrics["train_loss"])[:, 0]).all()


def test_pretraining_can_be_disabled_loudly(tiny_root, tmp_path, caplog):
  config = small_sim_config(tiny_root, **{"pretrain.enabled": False})
  result = simulate.run(config, tmp_path)
  assert result["pretrain"]["enabled"] is False and result["pretrain"]["epochs_run"] == 0
  assert "production models are untrained" in (tmp_path / "run.log").read_text()
