"""The table of label kinds: losses, predictions, metrics, panels and loader checks."""

import jax.numpy as jnp
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from gtesim import label_kinds
from gtesim.config import defaults
from gtesim.stats import descriptive


def test_numerical_losses_and_prediction():
  kind = label_kinds.KINDS["numerical"]
  out = jnp.log1p(jnp.array([9.0, 0.0]))
  y = jnp.array([99.0, 0.0])
  np.testing.assert_allclose(kind.loss("logmae", out, y), [np.log(100) - np.log(10), 0.0],
                             rtol=1e-6)
  np.testing.assert_allclose(kind.loss("mse", out, y), [90.0 ** 2, 0.0], rtol=1e-5)
  np.testing.assert_allclose(kind.loss("mae", out, y), [90.0, 0.0], rtol=1e-5)
  np.testing.assert_allclose(kind.predict(out), [9.0, 0.0], rtol=1e-6)
  assert float(kind.head_bias(jnp.array([0.0, 9.0, 99.0]))) == pytest.approx(np.log(10))


def test_binary_metric_is_the_auc_and_predictions_are_probabilities():
  kind = label_kinds.KINDS["binary"]
  gen = np.random.default_rng(0)
  out = gen.normal(size=200)
  y = (gen.random(200) < 1 / (1 + np.exp(-out))).astype(np.float32)
  mask = np.ones(200, bool)
  assert float(kind.validation_metric(jnp.asarray(out), jnp.asarray(y), mask)) == pytest.approx(
      descriptive.auc(out, y), rel=1e-6)
  np.testing.assert_allclose(kind.predict(jnp.array([0.0])), [0.5])
  assert kind.head_bias(jnp.zeros(3)) is None


def test_every_kind_fills_the_table():
  config = defaults.get_config()
  for name, kind in label_kinds.KINDS.items():
    assert kind.name == name and kind.losses and kind.metric
    title, ylabel, key = kind.panel("y", config.labels.play_time)
    assert key == f"y/{kind.metric}" and title and ylabel
    assert kind.stat_key("y") != "y"
    out = jnp.zeros(2)
    assert kind.loss(kind.losses[0], out, jnp.zeros(2)).shape == (2,)
    checks = kind.value_checks(pa.chunked_array([pa.array([-1.0, 0.0, 1.0], pa.float32())]))
    assert checks and all(pc.sum(bad).as_py() >= 1 for bad, _, _ in checks)


def test_a_threshold_makes_a_binary_label_read_as_numerical():
  label = defaults.label("watch_ratio", "binary", "bce", 0.0, 0.0, threshold=2.0)
  assert label_kinds.of(label).name == "binary"
  assert label_kinds.column_kind(label).name == "numerical"
