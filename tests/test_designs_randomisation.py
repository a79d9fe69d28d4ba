"""Who is treated and what a user may be shown: the co-diverted, cluster-randomised and
switchback designs, each one's defining property."""

import json
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pyarrow.parquet as pq
import pytest

from conftest import compiled, small_sim_config
from gtesim import designs
from gtesim import prng
from gtesim.data import dataset
from gtesim.data import encoding
from gtesim.designs.cluster import Clusters
from gtesim.designs.switchback import BurnIn, Periods
from gtesim.core import simulation
from gtesim.driver import setup as setup_lib
from gtesim.driver import simulate
from gtesim.errors import GtesimError
from gtesim.environments import fenwick


@pytest.mark.parametrize("environment,vectorize", [("replay", "map"), ("latent", "map"),
                                                   ("replay", "vmap")])
def test_codiverted_users_only_get_their_arms_videos(tiny_root, environment, vectorize):
  """Also under vmap (the accelerators' mapping): the Fenwick trees' batched updates."""
  config = small_sim_config(tiny_root, mode="codiverted",
                            **{"sim.environment": environment, "sim.n_steps": 40,
                               "sim.vectorize": vectorize})
  setup, _, fns = compiled(config)
  prod, _ = simulate.pretrain_production(config, setup, fns)
  points = simulate.point_inputs(config, designs.worlds_of(config))
  worlds = fns.start(setup.env, setup.reps, prod, points)
  for t0 in (0, 10, 20, 30):
    worlds, out = fns.chunk(setup.env, setup.reps, points, worlds, jnp.int32(t0))
  assert int(np.asarray(out.n_recs).sum()) > 0
  design = designs.make(config, setup.ds)
  n_recs = 0
  for b in range(config.repetitions):
    rep = jax.tree.map(lambda a: a[b], setup.reps_host)
    video_z = np.asarray(design.exposure.video_treated(rep, np.arange(len(setup.ds.video_ids)), 0.5))
    used = np.asarray(worlds.memory.video[b, 0] if environment == "latent" else
                      worlds.memory.used[b, 0])
    if environment == "latent":
      users = setup.reps_host.train_users[b][:, None].repeat(used.shape[1], 1)[used >= 0]
      videos = used[used >= 0]
    else:
      page, col = np.nonzero(used)
      users, videos = setup.packed.owner[page], setup.packed.video[page, col]
      # The Fenwick trees count exactly the eligible slots not recommended yet, per video arm.
      video = setup.packed.video[:setup.packed.n_env_pages]
      ok = (video >= 0) & setup.reps_host.train_video[b][np.maximum(video, 0)] & ~used
      in_t = video_z[np.maximum(video, 0)]
      counts = np.stack([(ok & in_t).sum(1), (ok & ~in_t).sum(1)]).astype(np.int32)
      np.testing.assert_array_equal(worlds.memory.tree[b, 0], fenwick.build(
          jnp.asarray(counts), setup.env.environment.page_rank))
    user_z = np.asarray(design.assignment.assign(rep, jnp.asarray(users), None, 0.5, 0))
    np.testing.assert_array_equal(video_z[videos], user_z)
    n_recs += len(videos)
    # Both arms exist, and the videos split about p_items = p.
    assert 0 < user_z.mean() < 1 and abs(video_z.mean() - 0.5) < 0.15
  assert n_recs > 100


def test_cluster_users_share_their_clusters_assignment():
  cluster = jnp.asarray(np.random.default_rng(0).integers(0, 30, 5000))
  rep = SimpleNamespace(key=jax.random.key_data(prng.rep_key(0, 3)),
                        designs={Clusters(n=30).data: cluster})
  design = Clusters(n=30)
  z = np.asarray(design.assign(rep, jnp.arange(5000), None, 0.4, 7))
  per_cluster = {c: set(z[np.asarray(cluster) == c]) for c in range(30)}
  assert all(len(v) == 1 for v in per_cluster.values())  # One Z per cluster.
  treated = np.mean([v.pop() for v in per_cluster.values()])
  assert 0 < treated < 1
  # The same at another step: Z is a property of the cluster, not of the step.
  z_later = np.asarray(design.assign(rep, jnp.arange(5000), None, 0.4, 99))
  np.testing.assert_array_equal(z, z_later)


def test_kmeans_clusters_group_similar_users_and_shuffle_moves_that_share(tiny_root):
  config = small_sim_config(tiny_root, mode="cluster")
  config.experiment.cluster.n = 4
  ds = dataset.load(config)
  train = np.ones(len(ds.user_ids), bool)
  enc = encoding.fit(ds.users, train)
  key = prng.rep_key(0, 0)
  base = Clusters.of(config).rep_data(ds, train, enc, key)
  assert base.shape == (len(ds.user_ids),) and set(base) == {0, 1, 2, 3}
  x = np.asarray(encoding.dense(encoding.Layout.of(ds.users), enc, ds.users.num, ds.users.cat,
                                list(ds.users.multi)))
  within = np.mean([((x[base == c] - x[base == c].mean(0)) ** 2).sum(1).mean()
                    for c in range(4)])
  shuffled_labels = np.random.default_rng(0).permutation(base)
  random = np.mean([((x[shuffled_labels == c] - x[shuffled_labels == c].mean(0)) ** 2)
                    .sum(1).mean() for c in range(4)])
  assert within < 0.9 * random  # Tighter than random groups of the same sizes.
  config.experiment.cluster.shuffle = 0.25
  moved = Clusters.of(config).rep_data(ds, train, enc, key)
  assert (moved != base).sum() == round(0.25 * len(base))
  config.experiment.cluster.shuffle = 0.0
  config.experiment.cluster.column = "user.user_active_degree"
  by_column = Clusters.of(config).rep_data(ds, train, enc, key)
  column = ds.users.cat[:, ds.users.cat_names.index("user.user_active_degree")]
  np.testing.assert_array_equal(by_column, column)


def test_jobs_with_other_cluster_settings_get_their_own_clusters_from_one_setup(tiny_root):
  """A study builds one Setup for all its jobs: each cluster setting gets its own set-up (a
  shuffle sweep must not run every job on the base config's clusters)."""
  base = small_sim_config(tiny_root, mode="cluster")
  base.experiment.cluster.n = 4
  shuffled = base.copy_and_resolve_references()
  shuffled.experiment.cluster.shuffle = 0.4
  pooled = base.copy_and_resolve_references()
  pooled.mode = "pooling"
  setup = setup_lib.build(base, configs=[base, shuffled, pooled])
  a, b = Clusters.of(base), Clusters.of(shuffled)
  assert set(setup.reps_host.designs) == {a.data, b.data}
  for r in range(base.repetitions):
    got_a = np.asarray(setup.reps_host.designs[a.data][r])
    got_b = np.asarray(setup.reps_host.designs[b.data][r])
    assert (got_a != got_b).sum() == round(0.4 * len(got_a))  # The same k-means, 40% moved.
  sim_b = simulation.make_simulation(shuffled, setup)
  assert sim_b.spec.design.assignment == b
  with pytest.raises(GtesimError, match="per-repetition set-up"):
    other = base.copy_and_resolve_references()
    other.experiment.cluster.n = 3
    simulation.make_simulation(other, setup)


def test_switchback_z_is_constant_within_a_period_and_burn_in_is_left_out(tiny_root,
                                                                          tmp_path):
  design = Periods(every=5, n_periods=12)
  rep = SimpleNamespace(key=jax.random.key_data(prng.rep_key(0, 1)))
  per_step = [np.asarray(design.assign(rep, jnp.arange(50), None, 0.5, t)) for t in range(60)]
  for t, z in enumerate(per_step):
    assert len(set(z)) == 1 and z[0] == per_step[t - t % 5][0]
  assert len({z[0] for z in per_step}) == 2
  balanced = [bool(design.assign(rep, jnp.arange(2), None, 0.25, t)[0])
              for t in range(0, design.every * 12, design.every)]
  assert sum(balanced) == 3  # Exactly round(0.25 x 12) of the 12 periods.
  alternating = Periods(every=5, order="alternating")
  zs = [bool(alternating.assign(rep, jnp.arange(2), None, 0.5, t)[0]) for t in range(0, 40, 5)]
  assert all(a != b for a, b in zip(zs, zs[1:]))
  assert [bool(BurnIn(5, 2).counted(t)) for t in range(10)] == [False, False, True, True,
                                                                  True] * 2

  config = small_sim_config(tiny_root, mode="switchback",
                            **{"experiment.switchback.every": 5, "experiment.switchback.burn_in": 2})
  simulate.run(config, tmp_path)
  steps = pq.read_table(tmp_path / "steps.parquet").to_pydict()
  step, n = np.asarray(steps["step"]) - 1, np.asarray(steps["n_recs"])  # Table steps: 1-based.
  arm, rep = np.asarray(steps["world"]), np.asarray(steps["rep"])
  assert (n[step % 5 < 2] == 0).all() and (n[step % 5 >= 2] > 0).any()
  for t in np.unique(step):  # One arm per step and repetition.
    for b in np.unique(rep):
      rows = (step == t) & (rep == b)
      assert min(n[rows & (arm == "T")].sum(), n[rows & (arm == "C")].sum()) == 0
  result = json.loads((tmp_path / "result.json").read_text())
  assert result["gte"]["click"]["se_per_rep"]["unit"][0] is not None
