"""Exploration (epsilon-greedy, softmax) and videos released during the experiment."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from conftest import compiled, kuairec_sim_config, small_sim_config
from gtesim.config import checks
from gtesim.core import exploration
from gtesim.core import step as step_lib
from gtesim.core.state import Point
from gtesim.driver import simulate
from gtesim.errors import InputError


def _point(epsilon=0.0, temperature=1.0):
  return Point(jnp.float32(0.5), jnp.zeros((1, 1)), jnp.float32(epsilon),
               jnp.float32(temperature))


def _choices(rule, scores, valid, point, n_keys):
  choose = jax.jit(jax.vmap(lambda k: rule.choose(scores, valid, point, k)))
  return np.asarray(choose(jax.random.split(jax.random.key(0), n_keys)))


def test_epsilon_one_is_uniform_over_the_valid_candidates_and_zero_is_greedy():
  scores = jax.random.normal(jax.random.key(1), (64, 8))
  valid = jnp.arange(8)[None, :] < jnp.asarray([8, 5, 1] * 21 + [8])[:, None]
  greedy = np.asarray(exploration.Greedy().choose(scores, valid, _point(), None))
  rule = exploration.EpsilonGreedy()
  zero = _choices(rule, scores, valid, _point(0.0), 4)
  assert (zero == greedy[None]).all()
  picks = _choices(rule, scores, valid, _point(1.0), 400)  # [400, 64]
  n_valid = np.asarray(valid.sum(1))
  assert (picks < n_valid[None]).all()
  for rows in (n_valid == 8, n_valid == 5):
    counts = np.stack([np.bincount(picks[:, r], minlength=8) for r in np.flatnonzero(rows)])
    k = int(n_valid[rows][0])
    _, p = stats.chisquare(counts.sum(0)[:k])
    assert p > 1e-3, counts.sum(0)
  assert (picks[:, n_valid == 1] == 0).all()
  half = _choices(rule, scores, valid, _point(0.5), 400)
  explored = (half != greedy[None])[:, n_valid == 8].mean()
  assert abs(explored - 0.5 * 7 / 8) < 0.03  # A uniform pick is the greedy one 1/8 of times.


def test_softmax_draws_in_proportion_to_exp_of_the_standardised_scores():
  scores = jnp.asarray([[0.0, 1.0, 2.0, 3.0]] * 32) * 7.0 + 100.0  # Scale and shift: no effect.
  valid = jnp.ones((32, 4), bool)
  for tau in (0.5, 2.0):
    picks = _choices(exploration.Softmax(), scores, valid, _point(temperature=tau), 500)
    z = (np.arange(4) - 1.5) / np.std(np.arange(4))
    want = np.exp(z / tau) / np.exp(z / tau).sum()
    counts = np.bincount(picks.ravel(), minlength=4)
    _, p = stats.chisquare(counts, want * counts.sum())
    assert p > 1e-3, (tau, counts, want)


def test_exploration_sweep_points_equal_single_runs_and_epsilon_zero_equals_greedy(tiny_root,
                                                                                   tmp_path):
  # Weighting with G a two-tower model: G may be any model class.
  common = {"mode": "weighting", "sim.exploration": "epsilon",
            "experiment.weighting.g.model": "two_tower"}
  swept = simulate.run(small_sim_config(tiny_root, **common, **{"sweep.epsilon": (0.0, 0.3)}),
                       tmp_path / "sweep")
  g = swept["metrics_final_and_at_step_0"]["G[p=0.5,gap=1,eps=0]"]
  assert 0 < g["new/weight/loss"] < 2 and 0 <= g["new/weight/auc"] <= 1
  by_eps = {p["epsilon"]: p for p in swept["points"]}
  single = simulate.run(small_sim_config(tiny_root, **common, **{"sim.epsilon": 0.3}),
                        tmp_path / "single")
  assert single["epsilon"] == 0.3
  assert single["gte"] == by_eps[0.3]["gte"] and single["arms"] == by_eps[0.3]["arms"]
  greedy = simulate.run(small_sim_config(tiny_root, mode="weighting", **{
      "experiment.weighting.g.model": "two_tower"}), tmp_path / "greedy")
  assert greedy["gte"] == by_eps[0.0]["gte"] and greedy["arms"] == by_eps[0.0]["arms"]
  assert by_eps[0.3]["gte"] != by_eps[0.0]["gte"]


def test_an_aa_is_exactly_zero_with_id_models_exploration_and_staggered_release(tiny_root,
                                                                              tmp_path):
  config = small_sim_config(tiny_root, **{"sim.environment": "latent",
                                          "sim.release": "staggered",
                                          "sim.exploration": "softmax",
                                          "sweep.alpha_gap": (0.0, 1.0)})
  config.labels.click.model = "wide_deep"
  config.labels.play_time.model = "two_tower"
  result = simulate.run(config, tmp_path)
  by_gap = {p["alpha_gap"]: p for p in result["points"]}
  for label in config.labels:
    assert by_gap[0.0]["gte"][label]["per_rep"] == [0.0, 0.0]
    assert by_gap[1.0]["gte"][label]["per_rep"] != [0.0, 0.0]
  assert result["pretrain"]["models"]["play_time"]["model"] == "two_tower"
  assert set(result["pretrain"]["models"]["click"]["tables"]) == {"user", "video", "cross"}


@pytest.mark.parametrize("environment,retrieval", [("latent", "uniform"),
                                                   ("matrix", "uniform"),
                                                   ("matrix", "popularity")])
def test_no_video_is_a_candidate_before_its_release_or_in_pretraining(tiny_root, environment,
                                                                      retrieval):
  make = kuairec_sim_config if environment == "matrix" else small_sim_config
  config = make(tiny_root, **{"sim.environment": environment, "sim.retrieval": retrieval,
                              "sim.release": "staggered", "sim.new_video_share": 0.5,
                              "sim.n_steps": 40})
  setup, sim, fns = compiled(config)
  rep = jax.tree.map(lambda x: x[0], setup.reps)
  release = np.asarray(rep.release)
  train_video = np.asarray(rep.train_video)
  new = release > 0
  assert 0.4 < new.sum() / train_video.sum() < 0.5 + 1e-9  # Some new videos draw step 0.
  assert (release[~train_video] == 0).all() and release.max() < config.sim.n_steps
  pre_video = np.asarray(setup.env.logs.page_video)[np.asarray(setup.pretrain_rows.page[0]),
                                                    np.asarray(setup.pretrain_rows.col[0])]
  assert not new[pre_video].any()
  prod = fns.init(setup.env, setup.reps, setup.pretrain_rows)
  from gtesim import designs  # pylint: disable=g-import-not-at-top
  points = simulate.point_inputs(config, designs.worlds_of(config))
  worlds = fns.start(setup.env, setup.reps, prod, points)
  world = jax.tree.map(lambda x: x[0, 0], worlds)
  point = jax.tree.map(lambda x: x[0], points)
  draw = jax.jit(lambda t: step_lib.draw(sim.spec, setup.env, rep, point, world, t))
  seen_late = 0
  for t in range(0, 40, 3):
    d = draw(jnp.int32(t))
    video = np.asarray(d.cand.video)[np.asarray(d.cand.valid)]
    assert (release[video] <= t).all(), t
    seen_late += int((release[video] > 0).sum())
  assert seen_late > 0  # Released videos do become candidates.
  if environment == "matrix":  # Every user's row holds every video: never short of them.
    assert (np.asarray(d.cand.valid).sum(1) == config.sim.n_candidate).all()


def test_exploration_release_and_model_keys_are_checked(tiny_root):
  for overrides, match in (
      ({"sweep.epsilon": (0.1,)}, "sweep.epsilon: is read by sim.exploration = 'epsilon'"),
      ({"sim.exploration": "epsilon", "sim.epsilon": 1.5}, "sim.epsilon: must be in"),
      ({"sim.exploration": "softmax", "sweep.temperature": (1.0, 0.0)},
       "sweep.temperature: every temperature"),
      ({"sim.exploration": "epsilon", "sweep.epsilon": (0.0, 0.1)},
       "sweep.epsilon: global mode's GC world"),
      ({"sim.release": "staggered"},
       "sim.release = 'staggered' needs sim.environment = 'matrix' or 'latent'"),
      ({"sim.environment": "matrix", "sim.release": "staggered", "sim.candidate_draws": 3},
       "sim.candidate_draws: must be at least sim.n_candidate (4): with staggered release"),
      ({"experiment.weighting.features": "video", "experiment.weighting.g.model": "two_tower"},
       "experiment.weighting.features"),
      ({"labels.click.model": "twotower"}, "did you mean 'two_tower'"),
  ):
    config = small_sim_config(tiny_root, **overrides)
    with pytest.raises(InputError, match=match.replace("(", r"\(").replace(")", r"\)")):
      checks.check(config)
