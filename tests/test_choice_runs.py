"""Runs of the choice world (environments/choice.py, driver/choice_world.py) against the page's
numpy rendering (tests/choice_reference.py), period by period on a fixed small world: every
ranker pair and training, the kept prefix with its whole-list fallback, the A/A, the designs'
draws, and the config's refusals."""

import dataclasses
import json
import os
import pathlib
import runpy
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import choice_reference as ref
from gtesim.data import choice_world
from gtesim.designs import choice_world as designs
from gtesim.driver import choice_world as driver
from gtesim.environments import choice
from gtesim.errors import GtesimError, InputError
from gtesim import writing
from gtesim.models import counting
from gtesim.study import replication as study
from gtesim.study import replication_report as report

U, I, N, T0 = 12, 60, 3, 3
T = I // N
R = 3


def _world(seed=3):
  w = choice_world.generate(np.random.default_rng(seed), U, I, 10, 10.0, 1.0, 1e-5, 50.0)
  # The reference compares in float64 what the device holds in float32.
  f32 = lambda a: a.astype(np.float32).astype(np.float64)
  return dataclasses.replace(w, utility=f32(w.utility), reserve=f32(w.reserve))


def _run_both(w, algos, training, item_arms, kept, fallback_rows, seed=0, kept_wide=0,
              wide_rows=0):
  gen = np.random.default_rng(seed)
  arm = (gen.random((R, U)) < 0.5).astype(np.int32)
  item_arm = (gen.random((R, I)) < 0.5).astype(np.int32)
  seeds = jnp.asarray(gen.integers(0, 2 ** 32, (R, 4), dtype=np.uint32))
  spec = choice.RunSpec(tuple(counting.RANKERS.get(a) for a in algos), T, T0, N, kept,
                        fallback_rows, 0.8, training=training, item_arms=item_arms,
                        kept_wide=kept_wide, wide_rows=wide_rows, segments=2)
  world = choice.World(jnp.broadcast_to(jnp.asarray(w.utility, jnp.float32), (R, U, I)),
                       jnp.broadcast_to(jnp.asarray(w.reserve, jnp.float32), (R, U)))
  runs = choice.RunInputs(jnp.asarray(np.repeat(arm[:, None], T, 1)), jnp.asarray(item_arm),
                          seeds)
  states, out = jax.jit(choice.simulate_chunk, static_argnums=0)(spec, world, runs)
  want = []
  for r in range(R):
    orders = [np.asarray(choice.new_item_order(seeds[r, 2:], t, U, N)) for t in range(T)]
    take, consumed = ref.run(
        w, algos, arm[r], T, T0, N,
        lambda t: np.asarray(choice.tie_noise(seeds[r, :2], t, U, I), np.float64),
        lambda t, u: orders[t][u], diverted=training == "diverted",
        item_arm=item_arm[r] if item_arms else None, frozen=training == "frozen")
    x = np.zeros((U, I))
    for t in range(T):
      ok = consumed[t] >= 0
      x[np.flatnonzero(ok), consumed[t][ok]] = 1
    want.append((np.stack([take[:, arm[r] == a].sum(1) for a in (0, 1)], 1), x,
                 np.stack([(consumed[:, arm[r] == a] >= 0).sum(1) for a in (0, 1)], 1)))
  return states, out, want


@pytest.mark.parametrize("algos", [("item_cf", "user_cf"), ("random", "oracle"),
                                   ("user_cf", "item_cf")])
@pytest.mark.parametrize("training,item_arms", [("pooled", False), ("diverted", False),
                                                ("pooled", True), ("frozen", False)])
def test_runs_equal_the_pages_rendering_period_by_period(algos, training, item_arms):
  """Every period's take-ups and consumptions per arm, and the final consumption matrix,
  equal the numpy rendering's, with a kept prefix of 2, then 6 for the users it could have
  misled, then their whole list (the default cascade's shape); pooled item-CF vs user-CF
  also with a prefix of 6 straight to the whole list, and with the whole list alone. User-CF reads the X X^T its
  state keeps (update_gram), which equals the product."""
  w = _world()
  variants = [(2, 6)] + ([(6, 0), (I, 0)] if (training, item_arms, algos) == (
      "pooled", False, ("item_cf", "user_cf")) else [])
  for kept, kept_wide in variants:
    states, out, want = _run_both(w, algos, training, item_arms, kept, R * U,
                                  kept_wide=kept_wide, wide_rows=R * U)
    for r, (take, x, consumed) in enumerate(want):
      np.testing.assert_array_equal(np.asarray(out.take[:, r]), take)
      np.testing.assert_array_equal(np.asarray(out.consumed[:, r]), consumed)
      np.testing.assert_array_equal(np.asarray(states.x[r]), x)
      if states.gram.size:
        np.testing.assert_array_equal(np.asarray(states.gram[r]), x @ x.T)
    assert int(out.overflow.max()) == 0
    if kept < I:  # The short prefix missed some choices, which a retry decided.
      assert int(out.fallback.sum()) > int(out.whole.sum()) > 0 if kept_wide else (
          int(out.fallback.sum()) == int(out.whole.sum()) > 0)
  assert ("user_cf" in algos and training != "frozen") == bool(states.gram.size)


def test_the_exactness_guard_fires_when_the_kept_list_is_too_short():
  """With a prefix of 2 and too few rows for the longer prefix or the whole list, the guard
  counts the users beyond them (whose choices then differ from the page's), and the driver
  refuses such a run."""
  w = _world()
  for kept_wide, wide_rows, rows in ((0, 0, 2), (6, 2, R * U), (6, R * U, 1)):
    _, out, want = _run_both(w, ("item_cf", "user_cf"), "pooled", False, 2, rows,
                             kept_wide=kept_wide, wide_rows=wide_rows)
    assert int(out.overflow.max()) > 0
    assert any(not np.array_equal(np.asarray(out.take[:, r]), take)
               for r, (take, _, _) in enumerate(want))
  config = _config(runs=2, chunk=2)
  config.choice.kept, config.choice.fallback_rows = 2, 1
  with pytest.raises(GtesimError, match="choice.fallback_rows"):
    driver.replicate(config, log=lambda *_: None)


def _config(**replication):
  config = runpy.run_path(str(pathlib.Path(__file__).parents[1] / "configs" /
                              "replication.py"))["get_config"]()
  config.choice.update(n_users=U, n_items=I, n_new=N, n_periods=T, warmup=T0, kept=4,
                       kept_wide=8, wide_rows=64, fallback_rows=64, segments=1)
  config.replication.update({"runs": 4, "chunk": 2, **replication})
  return config


def test_aa_truth_is_exactly_zero_and_run_b_equals_a_single_run():
  """Algo1 = algo2: the paired all-one-ranker worlds are the same world, so the paired
  truth is exactly 0 in every run; and run b of B is bit for bit a run of B = 1 with
  rep_offset b."""
  config = _config(algo1="item_cf", algo2="item_cf")
  result = driver.replicate(config, log=lambda *_: None)
  assert result["truth_paired"] == 0.0 and result["truth_paired_se"] == 0.0
  assert set(result["per_run"]["truth_paired"]) == {0.0}
  config = _config(design="codiverted")
  world = driver.make_world(config)
  clusters = driver.clusters_of(config, world)
  many, _ = driver.ab_runs(config, world, clusters)
  config.replication.update(runs=2, rep_offset=2)
  few, _ = driver.ab_runs(config, world, clusters)
  for field in ("take", "n", "user_take", "user_n"):
    np.testing.assert_array_equal(getattr(many, field)[2:], getattr(few, field))


def test_cluster_draws_treat_exactly_floor_kp_clusters_and_shuffle_the_share():
  gen = np.random.default_rng(0)
  label = np.repeat(np.arange(4), 25)
  clusters = designs.Clusters(label, 4, {})
  for p, shuffle in ((0.5, 0.0), (0.3, 0.2), (0.9, 0.4)):
    d = designs.make("cluster", shuffle).draw(gen, p, 5, 10, clusters)
    moved = d.cluster != label
    assert moved.sum() == 4 * round(shuffle * 25)
    assert all(moved[label == c].sum() == round(shuffle * 25) for c in range(4))
    # The other reading: each user independently; over 400 draws, the share within 3 SEs.
    each = designs.make("cluster", shuffle, "each")
    share = np.mean([(each.draw(gen, p, 5, 10, clusters).cluster != label).mean()
                     for _ in range(400)])
    assert abs(share - shuffle) <= 3 * np.sqrt(shuffle * (1 - shuffle) / 40000) + 1e-12
    on_algo2 = np.unique(d.cluster[d.arm[0] == 1])
    assert len(on_algo2) == int(np.floor(4 * p))
    assert (d.arm == d.arm[0]).all()  # Every period the same arms.
  taste = np.repeat(np.eye(3), 10, 0) + gen.normal(0, 0.01, (30, 3))
  fitted = designs.taste_clusters(taste, 2, 6, 0)
  assert fitted.k == 3 and max(fitted.silhouettes, key=fitted.silhouettes.get) == 3


def test_codiverted_and_switchback_draws():
  gen = np.random.default_rng(1)
  d = designs.make("codiverted").draw(gen, 0.3, 4, 5000, designs.all_users(2000))
  assert abs(d.arm[0].mean() - 0.3) < 0.04 and abs(d.item_arm.mean() - 0.3) < 0.04
  d = designs.make("switchback").draw(gen, 0.3, 400, 5, designs.all_users(3))
  assert (d.arm == d.arm[:, :1]).all() and abs(d.arm[:, 0].mean() - 0.3) < 0.08


@pytest.mark.parametrize("key,value,named", [
    ("replication.design", "pooling", "replication.design"),
    ("replication.algo1", "itemcf", "choice.algo1"),
    ("replication.p", 1.0, "replication.p"),
    ("choice.warmup", 100, "choice.warmup"),
    ("choice.kept", 5000, "choice.kept"),
    ("choice.sigma", 0.5, "choice.sigma"),
    ("replication.shuffle_reading", "some", "replication.shuffle_reading"),
])
def test_bad_config_values_are_refused_naming_the_key(key, value, named):
  config = _config()
  section, name = key.split(".")
  config[section][name] = value
  with pytest.raises(InputError, match=named.replace(".", r"\.")):
    driver.replicate(config, log=lambda *_: None)


def test_a_cluster_split_with_an_empty_arm_is_refused():
  config = _config(design="cluster", p=0.1)
  with pytest.raises(InputError, match=r"replication\.p"):
    driver.replicate(config, log=lambda *_: None)


def test_segments_cover_every_period_with_every_released_item():
  spec = choice.RunSpec((counting.RANKERS.get("random"),), 100, 10, 10, 8, 8, 0.8,
                        segments=4, kept_wide=32, wide_rows=8)
  segs = choice.segments(spec, 1000)
  assert segs[0] == (0, 10, 0) and [s[1] for s in segs[:-1]] == [s[0] for s in segs[1:]]
  assert segs[-1][1] == 100 and len(segs) == 5
  for first, end, width in segs[1:]:  # The warm-up ranks nothing (width 0); the others at
    # least the longer prefix's 32 items.
    assert width >= min(1000, max(32, (end - 1) * 10)) and width <= 1000


def test_the_replication_study_plans_its_rows_and_writes_its_table(tmp_path):
  """The plan holds the issue's rows; a row run through the study's shared worlds gives the
  same result as replicate() on its own, and table.csv has exactly the issue's columns."""
  rows = study.plan(1000, 200)
  parts = [part for _, part, _ in rows]
  assert (parts.count("headline"), parts.count("p_sweep"), parts.count("shuffle_sweep"),
          parts.count("shuffle_each"), parts.count("aa")) == (24, 20, 3, 2, 4)
  assert len({name for name, _, _ in rows}) == len(rows)
  base = _config()
  name, part, settings = next(r for r in study.plan(4, 4) if r[1] == "shuffle_sweep" and
                              r[2]["shuffle"] == 0.2)
  settings = {**settings, "runs": 2}
  worlds = study.Worlds(tmp_path / "worlds", base, 4)
  config = study.row_config(base, settings)
  shared = driver.replicate(config, log=lambda *_: None,
                            take_ups=worlds.for_row(settings["gamma_pref"], 2))
  alone = driver.replicate(config, log=lambda *_: None)
  assert shared["per_run"] == alone["per_run"]  # Paired truths: the first 2 of 4 runs.
  assert shared["mean_estimate"] == alone["mean_estimate"]
  (tmp_path / "rows").mkdir()
  (tmp_path / "rows" / f"{name}.json").write_text(json.dumps(writing.jsonable(
      {**shared, "part": part})))
  study.write_tables(tmp_path, [(name, part, settings)], worlds)
  lines = (tmp_path / "table.csv").read_text().splitlines()
  assert lines[0].split(",") == list(study.COLUMNS) and len(lines) == 2
  row = dict(zip(study.COLUMNS, lines[1].split(",")))
  assert row["design"] == "cluster" and float(row["shuffle"]) == 0.2 and row["B"] == "2"
  assert (tmp_path / "worlds.csv").read_text().count("\n") == 5  # Header + 2 rankers x 2.
  commit = {"package": "0123456789abcdef", "dirty": False}
  report.write_report(tmp_path, study.plan(4, 4), commit, commit)
  text = (tmp_path / "report.md").read_text()
  pct = report.ratio_ci(shared["per_run"]["estimate"], shared["per_run"]["truth_paired"])
  line = next(x for x in text.splitlines() if x.startswith("| shuffle_sweep | cluster | 0.5 | 0.2"))
  assert f"{pct[0]:+.1f}% [{pct[1]:+.1f}, {pct[2]:+.1f}]" in line
  assert "Partial: 52 of 53 rows" in text and "`0123456789`" in text


def test_per_run_worlds_run_as_the_shared_world_when_equal():
  """choice.world_per_run's path (a world per run, chunked with the runs) gives the shared
  world's results when every run's world is that world; its worlds differ run by run."""
  config = _config()
  world = driver.make_world(config)
  design = designs.make("naive")
  draws = [design.draw(driver.assignment_rng(0, b), 0.5, T, I, designs.all_users(U))
           for b in range(3)]
  seeds = [np.full(4, b, np.uint32) for b in range(3)]
  shared = driver.simulate(config, ("item_cf", "user_cf"), design, draws, seeds, world)
  per_run = driver.simulate(config, ("item_cf", "user_cf"), design, draws, seeds, [world] * 3)
  np.testing.assert_array_equal(shared.take, per_run.take)
  config.choice.world_per_run = True
  worlds = driver.run_worlds(config)
  assert len({driver.world_digest(w) for w in worlds}) == len(worlds) == 4
  assert driver.world_digest(worlds[1]) == driver.world_digest(driver.make_world(config, 1))


_DEVICES_SCRIPT = """
import json, runpy, sys
import numpy as np
sys.path.insert(0, {tests!r})
import test_choice_runs as t
from gtesim.driver import choice_world as driver
import jax
config = t._config(runs=5, chunk=2, design={design!r})
world = driver.make_world(config)
runs, _ = driver.ab_runs(config, world, driver.clusters_of(config, world))
np.savez({out!r}, take=runs.take, user_take=runs.user_take, devices=jax.device_count())
"""


@pytest.mark.parametrize("design", ["codiverted"])
def test_runs_do_not_depend_on_the_cpu_device_count(tmp_path, design):
  """5 runs in chunks of 2 on 3 CPU devices (4 chunks, one of padding) equal them on one,
  bit for bit: every device runs the same per-chunk program."""
  out = {}
  for n in (1, 3):
    path = tmp_path / f"{n}.npz"
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n}",
               JAX_PLATFORMS="cpu")
    script = _DEVICES_SCRIPT.format(tests=str(pathlib.Path(__file__).parent), design=design,
                                    out=str(path))
    subprocess.run([sys.executable, "-c", script], check=True, env=env,
                   cwd=pathlib.Path(__file__).parents[1])
    out[n] = np.load(path)
    assert int(out[n]["devices"]) == n
  for key in ("take", "user_take"):
    np.testing.assert_array_equal(out[1][key], out[3][key])
  assert out[1]["take"].shape[0] == 5
