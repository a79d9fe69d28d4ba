"""Environments (replay, matrix, latent): their checks, candidate draws and outcomes, and whole
runs in each."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import fixture_config, kuairand_folder, kuairec_sim_config, small_sim_config
from gtesim import environments
from gtesim.config import defaults as default_config
from gtesim.data import dataset, synthetic
from gtesim.driver import simulate
from gtesim.environments import catalogue
from gtesim.environments import latent as latent_env
from gtesim.environments.window import window_candidates
from gtesim.errors import InputError


# --- Environment checks ---------------------------------------------------------------------

def test_matrix_refuses_sparse_logs(tiny_root, tmp_path):
  config = small_sim_config(tiny_root, **{"sim.environment": "matrix"})
  with pytest.raises(InputError, match="matrix_min_density"):
    simulate.run(config, tmp_path)


def test_latent_refuses_real_data_and_unknown_columns(tiny_root, tmp_path):
  config = fixture_config(kuairand_folder(tmp_path))
  config.sim.environment = "latent"
  with pytest.raises(InputError, match="needs the latent truth of the synthetic"):
    environments.check_data(config, dataset.load(config))
  config = small_sim_config(tiny_root, **{"sim.environment": "latent"})
  config.labels.click.column = "is_like"
  with pytest.raises(InputError, match="labels.click: the latent model gives is_click and "
                     "play_time_ms of any pair, not 'is_like'"):
    simulate.run(config, tmp_path / "run")


# --- Sampling and outcomes ------------------------------------------------------------------

def _catalogue_draws(weights, train, recommended, k, trials=6000, n_draws=32):
  block_cdf, within_cdf = catalogue.two_level_cdf(np.asarray(weights, np.float32))
  u = jax.random.uniform(jax.random.key(0), (trials, n_draws, 2))
  rec = jnp.broadcast_to(jnp.asarray(recommended, jnp.int32), (trials, len(recommended)))
  video, valid, n_ok = jax.jit(catalogue.catalogue_candidates, static_argnums=(0, 1))(
      k, n_draws, jnp.asarray(block_cdf), jnp.asarray(within_cdf), jnp.asarray(train), rec, u)
  return np.asarray(video), np.asarray(valid), np.asarray(n_ok)


def test_catalogue_candidates_are_uniform_without_replacement_among_eligible():
  """V = 12: videos 2 and 7 are test videos, 0, 5 and 9 already recommended: the 7 eligible
  videos each appear among the 3 candidates with probability 3/7."""
  train = np.ones(12, bool)
  train[[2, 7]] = False
  video, valid, _ = _catalogue_draws(np.ones(12), train, [0, 5, 9, -1], k=3)
  assert valid.all()
  assert all(len(set(row)) == 3 for row in video)
  counts = np.bincount(video.ravel(), minlength=12)
  eligible = np.array([1, 3, 4, 6, 8, 10, 11])
  assert counts[np.setdiff1d(np.arange(12), eligible)].sum() == 0
  expected = len(video) * 3 / 7
  chi2 = ((counts[eligible] - expected) ** 2 / expected).sum()
  assert chi2 < 22.5  # 99.9% quantile of chi2 with 6 degrees of freedom.


def test_popularity_retrieval_first_candidate_follows_the_weights():
  """The first candidate is the first eligible draw: P(v) = w_v / sum of eligible weights."""
  weights = np.array([1, 2, 4, 8, 1, 16, 3, 5], np.float32)
  train = np.ones(8, bool)
  train[6] = False
  video, valid, _ = _catalogue_draws(weights, train, [5], k=2)
  assert valid.all()
  eligible = np.array([0, 1, 2, 3, 4, 7])
  p = weights[eligible] / weights[eligible].sum()
  counts = np.bincount(video[:, 0], minlength=8)
  assert counts[[5, 6]].sum() == 0
  expected = len(video) * p
  chi2 = ((counts[eligible] - expected) ** 2 / expected).sum()
  assert chi2 < 20.5  # 99.9% quantile of chi2 with 5 degrees of freedom.


def test_two_level_cdf_draws_match_weights_on_a_large_catalogue():
  weights = np.random.default_rng(0).pareto(1.5, 10_000).astype(np.float32) + 0.01
  block_cdf, within_cdf = catalogue.two_level_cdf(weights)
  u = jax.random.uniform(jax.random.key(1), (200_000, 2))
  v = np.asarray(catalogue.draw_videos(jnp.asarray(block_cdf), jnp.asarray(within_cdf), u))
  assert v.min() >= 0 and v.max() < 10_000
  p = weights / weights.sum()
  top = np.argsort(p)[-20:]  # The 20 most popular videos: their frequencies.
  freq = np.bincount(v, minlength=10_000)[top] / len(v)
  np.testing.assert_allclose(freq, p[top], atol=4 * np.sqrt(p[top] / len(v)).max())


def test_latent_draws_average_to_the_expected_outcomes(tiny_root):
  config = small_sim_config(tiny_root)
  folder = dataset.resolve_root(config)
  latent = synthetic.load_latent(folder)
  lat = {k: jnp.asarray(latent[k], jnp.float32) for k in
         ("taste", "bias", "topic", "appeal", "duration_ms", "click_offset")}
  users = jnp.full((40_000,), 3)
  videos = jnp.full((40_000,), 17)
  keys = jax.random.split(jax.random.key(0), 40_000)
  draw = jax.vmap(lambda k, u, v: latent_env.latent_outcomes(
      lat, ("is_click", "play_time_ms"), False, u[None], v[None], k)[0])
  y = np.asarray(draw(keys, users, videos))
  exact = synthetic.expected_outcomes(latent, np.array([3]), np.array([17]))
  p = exact["is_click"][0]
  assert abs(y[:, 0].mean() - p) < 4 * np.sqrt(p * (1 - p) / len(y))
  assert abs(y[:, 1].mean() - exact["play_time_ms"][0]) < 4 * y[:, 1].std() / np.sqrt(len(y))
  # Common random numbers: a pair's outcome depends on (key, user, video) only.
  key = jax.random.key(5)
  a = latent_env.latent_outcomes(lat, ("is_click",), False, jnp.array([3, 4]),
                                   jnp.array([17, 9]), key)
  b = latent_env.latent_outcomes(lat, ("is_click",), False, jnp.array([8, 3]),
                                   jnp.array([1, 17]), key)
  assert float(a[0, 0]) == float(b[1, 0])


# --- Whole runs -----------------------------------------------------------------------------

@pytest.mark.parametrize("environment,release", [("latent", "all"), ("matrix", "all"),
                                                 ("matrix", "staggered")])
def test_aa_is_exactly_zero(tiny_root, tmp_path, environment, release):
  make = kuairec_sim_config if environment == "matrix" else small_sim_config
  config = make(tiny_root, **{"sim.environment": environment, "sim.release": release})
  for label in config.labels.values():
    label.alpha_T = label.alpha_C
  simulate.run(config, tmp_path)
  result = json.loads((tmp_path / "result.json").read_text())
  for entry in result["gte"].values():
    assert entry["per_rep"] == [0.0, 0.0]
  assert result["environment"]["kind"] == environment
  assert sum(result["recommendations"]["GT"]) == 2 * 20 * 8


def test_replay_exhausts_where_latent_and_matrix_do_not(tiny_root, tmp_path):
  """Same steps and batch: the tiny logs' users run out of items, the catalogue does not."""
  steps = {"sim.n_steps": 160, "sim.validate_every": 40, "checkpoint_every": 160,
           "repetitions": 1}
  exhausted = {}
  for environment in ("replay", "latent", "matrix"):
    make = kuairec_sim_config if environment == "matrix" else small_sim_config
    config = make(tiny_root, **{"sim.environment": environment, **steps})
    simulate.run(config, tmp_path / environment)
    result = json.loads((tmp_path / environment / "result.json").read_text())
    exhausted[environment] = sum(sum(v) for v in result["exhausted_users"].values())
    if environment != "replay":
      assert sum(sum(v) for v in result["short_users"].values()) == 0
  assert exhausted["replay"] > 0 and exhausted["latent"] == 0 and exhausted["matrix"] == 0


def test_latent_memory_is_per_train_user_and_epoch(tiny_root):
  from conftest import compiled  # pylint: disable=g-import-not-at-top
  config = small_sim_config(tiny_root, **{"sim.environment": "latent"})
  setup, sim, fns = compiled(config)
  assert sim.spec.environment.history_slots == -(-20 // (setup.n_train // 8))
  prod = fns.init(setup.env, setup.reps, setup.pretrain_rows)
  from gtesim import designs  # pylint: disable=g-import-not-at-top
  points = simulate.point_inputs(config, designs.worlds_of(config))
  worlds = fns.start(setup.env, setup.reps, prod, points)
  slots = sim.spec.environment.history_slots
  assert worlds.memory.video.shape == (2, 2, setup.n_train, slots)
  assert worlds.memory.video.dtype == jnp.int32


def test_expected_outcomes_are_reported(tiny_root, tmp_path):
  config = small_sim_config(tiny_root, **{"sim.environment": "latent",
                                          "sim.outcome": "expected"})
  simulate.run(config, tmp_path)
  result = json.loads((tmp_path / "result.json").read_text())
  assert result["gte"]["click"]["outcome"] == "expected"
  steps = result["gt"]["click"]["per_rep"]
  assert all(0 < x < 1 for x in steps)  # Means of probabilities, not of 0/1 draws.
  config.sim.environment = "replay"
  with pytest.raises(InputError, match="sim.outcome = 'expected' needs sim.environment"):
    simulate.run(config, tmp_path / "replay")


def test_figure_panels_follow_the_labels(tiny_root, tmp_path):
  config = small_sim_config(tiny_root)
  labels = config.labels
  with config.unlocked():
    config.labels = type(labels)({"clk": labels.click, "watch": labels.play_time})
  from gtesim.driver import figures  # pylint: disable=g-import-not-at-top
  keys = [p[2] for p in figures.panels(config)]
  assert keys == ["clk/auc", "clk/loss", "watch/rel_error", "watch/loss"]  # No weight model.
  mode, config.mode = config.mode, "weighting"
  assert len(figures.panels(config)) == 7  # + the weight model's two and its weights'.
  config.mode = mode
  simulate.run(config, tmp_path)
  result = json.loads((tmp_path / "result.json").read_text())
  assert set(result["gte"]) == {"clk", "watch"}
  assert "clk_rate" in result["dataset"] and "mean_watch" in result["dataset"]


def test_packed_popularity_retrieval_first_candidate_follows_the_weights():
  """Replay/matrix windows: the top key log(u) / w_v is a draw with P(v) ~ w_v among the
  eligible slots (slot 3 is used, video 6 is a test video)."""
  from types import SimpleNamespace  # pylint: disable=g-import-not-at-top
  weights = np.array([1, 2, 4, 8, 1, 16, 3, 5], np.float32)
  static = SimpleNamespace(page_slots=8, window_pages=1)
  spec = SimpleNamespace(static=static, n_candidate=2)
  env = SimpleNamespace(logs=SimpleNamespace(
      first_page=jnp.zeros(1, jnp.int32), n_pages=jnp.ones(1, jnp.int32),
      page_video=jnp.arange(8, dtype=jnp.int32)[None]))
  train = np.ones(8, bool)
  train[6] = False
  rep = SimpleNamespace(train_video=jnp.asarray(train))
  used = jnp.zeros((1, 8), bool).at[0, 3].set(True)
  keys = jax.random.split(jax.random.key(0), 6000)
  first = jax.vmap(lambda k: window_candidates(
      spec, env, rep, used, jnp.zeros(1, jnp.int32), k, jnp.asarray(weights))[2][0, 0])(keys)
  counts = np.bincount(np.asarray(first), minlength=8)
  eligible = np.array([0, 1, 2, 4, 5, 7])
  assert counts[[3, 6]].sum() == 0
  expected = len(keys) * weights[eligible] / weights[eligible].sum()
  chi2 = ((counts[eligible] - expected) ** 2 / expected).sum()
  assert chi2 < 20.5  # 99.9% quantile of chi2 with 5 degrees of freedom.
