"""The study: its plan, paired statistics, and a tiny study end to end (and resumed)."""

import json

import jax
import numpy as np
import pytest

from conftest import assert_same_tables, small_sim_config, without_cost
from gtesim.config import defaults as default_config
from gtesim.driver import checkpoints
from gtesim.driver import setup as setup_lib
from gtesim.study import execute as study
from gtesim.study import plan
from gtesim.errors import GtesimError


def _study_config(root, **overrides):
  config = small_sim_config(root, **overrides)
  config.study = default_config.study_section()
  return config


def test_plan_runs_every_design_and_point_from_one_production_model(tiny_root):
  jobs = {j.name: j for j in plan.plan(_study_config(tiny_root))}
  assert list(jobs) == ["truth-r1", "truth-frozen-r1", "pooling", "splitting", "snapshot",
                        "weighting", "codiverted", "cluster", "switchback", "weighting-video"]
  assert [q[:2] for q in jobs["truth-r1"].worlds.points] == [(0.5, 1.0), (0.5, 0.25), (0.5, 0.5)]
  assert jobs["truth-frozen-r1"].config.sim.train_models is False
  # The truth's replicates: independent draws (sim.replicate 1..K; the designs draw at 0).
  assert jobs["truth-r1"].config.sim.replicate == 1 and jobs["pooling"].config.sim.replicate == 0
  assert [q[:2] for q in jobs["pooling"].worlds.points] == [
      (0.5, 1.0), (0.1, 1.0), (0.2, 1.0), (0.8, 1.0), (0.9, 1.0), (0.5, 0.0), (0.5, 0.25),
      (0.5, 0.5)]
  assert jobs["weighting-video"].config.experiment.weighting.features == "video"
  assert "study" not in jobs["truth-r1"].config
  config = _study_config(tiny_root, **{"sim.environment": "latent"})
  config.study.truth_replicates, config.study.expected_truth = 3, True
  jobs = {j.name: j for j in plan.plan(config)}
  assert [n for n in jobs if n.startswith("truth")] == [
      "truth-r1", "truth-r2", "truth-r3", "truth-frozen-r1", "truth-frozen-r2", "truth-frozen-r3",
      "truth-expected-r1", "truth-expected-r2", "truth-expected-r3"]
  assert [jobs[f"truth-r{k}"].config.sim.replicate for k in (1, 2, 3)] == [1, 2, 3]
  assert jobs["truth-expected-r2"].config.sim.outcome == "expected"
  # An exploration sweep: its designs cross their points with the epsilons, each epsilon
  # gets its own truth.
  config = _study_config(tiny_root, **{"sim.exploration": "epsilon"})
  config.study.epsilons = (0.2,)
  jobs = {j.name: j for j in plan.plan(config)}
  assert "truth-eps=0.2-r1" in jobs and jobs["truth-eps=0.2-r1"].config.sim.epsilon == 0.2
  assert [q.epsilon for q in jobs["pooling"].worlds.points][:2] == [0.0, 0.2]
  assert {q.epsilon for q in jobs["snapshot"].worlds.points} == {0.0}


def test_tiny_study_end_to_end_pairs_each_repetition_with_its_truth(tiny_root, tmp_path):
  config = _study_config(tiny_root, repetitions=3)
  config.study.designs = ("pooling", "snapshot")
  config.study.p_values = (0.5, 0.2)
  config.study.alpha_gaps = (0.0, 1.0)
  config.study.weighting_video = False
  config.study.truth_replicates = 2
  config.study.bootstrap = 200
  (tmp_path / "analysis.md").write_text("Hand-written analysis.")
  summary = study.run(config, tmp_path)
  on_disk = json.loads((tmp_path / "study.json").read_text())
  np.testing.assert_allclose(  # study.json keeps 7 significant digits of the summary.
      on_disk["designs"]["pooling"]["p=0.5,gap=1"]["click"]["per_rep"],
      summary["designs"]["pooling"]["p=0.5,gap=1"]["click"]["per_rep"], rtol=1e-6)
  saved = summary
  truth = np.array(saved["truth"]["gap=1"]["click"]["per_rep"])
  replicates = np.array([json.loads((tmp_path / "runs" / f"truth-r{k}" / "result.json")
                                    .read_text())["gte"]["click"]["per_rep"] for k in (1, 2)])
  assert not np.array_equal(replicates[0], replicates[1])  # Independent draws.
  np.testing.assert_array_equal(truth, replicates.mean(0))
  np.testing.assert_allclose(saved["truth"]["gap=1"]["click"]["truth_se_per_rep"],
                             replicates.std(0, ddof=1) / np.sqrt(2))
  pooling_run = json.loads((tmp_path / "runs" / "pooling" / "result.json").read_text())
  main = next(p for p in pooling_run["points"] if (p["p_treatment"], p["alpha_gap"]) == (0.5, 1))
  entry = saved["designs"]["pooling"]["p=0.5,gap=1"]["click"]
  est = np.array(main["gte"]["click"]["per_rep"])
  assert entry["per_rep"] == est.tolist()
  assert entry["bias"] == np.mean(est - truth)
  ci = np.array(entry["ci95_per_rep"]["welch"])
  assert entry["coverage"]["welch"] == np.mean((ci[:, 0] <= truth) & (truth <= ci[:, 1]))
  assert "vs_truth_frozen" in saved["designs"]["snapshot"]["p=0.5,gap=1"]
  aa = saved["aa"]["pooling"]["click"]["type_I_error"]
  ci0 = np.array(saved["designs"]["pooling"]["p=0.5,gap=0"]["click"]["ci95_per_rep"]["user"])
  assert aa["user"] == np.mean((ci0[:, 0] > 0) | (ci0[:, 1] < 0))
  assert saved["horizon"]["pooling"]["step"] == [10, 20]
  report = (tmp_path / "report.md").read_text()
  assert "Hand-written analysis." in report and "| pooling |" in report
  for name in ("errors", "p_sweep", "horizon", "pretraining"):
    assert (tmp_path / f"{name}.png").exists()
  assert not (tmp_path / "gap_sweep.png").exists()  # One nonzero gap: a table row, no sweep.
  assert report.startswith(f"# Study `{config.study.name}`") and "## Verdict" in report
  assert report.index("## Verdict") < report.index("## Production model")
  assert {r["design"] for r in saved["verdict"]["click"]} == {"pooling", "snapshot"}
  written = {p: p.stat().st_mtime_ns for p in [*(tmp_path / "runs").glob("*/result.json"),
                                               tmp_path / "production" / "pretrain.json"]}
  again = study.run(config, tmp_path)  # Production and finished jobs are reused.
  assert again["designs"] == summary["designs"] and again["truth"] == summary["truth"]
  assert {p: p.stat().st_mtime_ns for p in written} == written


def test_study_gives_codiverted_and_cluster_their_setup(tiny_root, tmp_path):
  """One Setup serves every job: it must carry the video arms and user clusters those designs
  need (built for the truth job alone, every video looked treated and every user was in one
  cluster: half the users exhausted, no control arm)."""
  config = _study_config(tiny_root, repetitions=2)
  config.study.designs = ("codiverted", "cluster")
  config.study.p_values = (0.5,)
  config.study.alpha_gaps = (1.0,)
  config.study.frozen_truth = False
  config.experiment.cluster.n = 4
  study.run(config, tmp_path)
  for design in ("codiverted", "cluster"):
    result = json.loads((tmp_path / "runs" / design / "result.json").read_text())
    assert sum(map(sum, result["exhausted_users"].values())) == 0
    assert all(np.isfinite(result["gte"][l]["per_rep"]).all() for l in config.labels)
    assert min(sum(result["recommendations"]["T"]), sum(result["recommendations"]["C"])) > 0


def test_a_setup_without_a_designs_data_is_refused(tiny_root):
  from gtesim.core import simulation  # pylint: disable=g-import-not-at-top
  config = small_sim_config(tiny_root)
  setup = setup_lib.build(config)
  config.mode = "codiverted"
  with pytest.raises(GtesimError, match="codiverted design needs its per-repetition set-up"):
    simulation.make_simulation(config, setup)


def test_production_of_a_changed_config_replaces_the_saved_one(tiny_root, tmp_path):
  """Orbax skips a save at a step it holds: re-pretrained production models must replace the
  saved ones, or the next invocation would restore the old models under the new config."""
  config = _study_config(tiny_root, repetitions=1)
  setup = setup_lib.build(config)
  config.pretrain.max_epochs = 1
  first, _ = study._production(config, setup, tmp_path / "production")  # pylint: disable=protected-access
  config.pretrain.max_epochs = 3
  fresh, _ = study._production(config, setup, tmp_path / "production")  # pylint: disable=protected-access
  restored, _ = study._production(config, setup, tmp_path / "production")  # pylint: disable=protected-access
  differs = jax.tree.leaves(jax.tree.map(lambda a, b: bool(np.any(a != b)), first.best_params,
                                         fresh.best_params))
  assert any(differs)
  jax.tree.map(np.testing.assert_array_equal, fresh.best_params, restored.best_params)
  ckpts = checkpoints.Checkpoints(tmp_path / "production" / "checkpoint", max_to_keep=1)
  with pytest.raises(GtesimError, match="was not written"):
    ckpts.save(0, first, {})
  ckpts.close()


def test_a_study_by_stages_equals_the_one_process_study(small_study, tmp_path, monkeypatch):
  """The job graph's stages (pretrain, each job, report) give the one-process study.json,
  although the pooling job is stopped by a signal after its first chunk (checkpointed) and
  resumed from there; a report before every job is finished, and a job before pretraining,
  are refused."""
  from gtesim.driver import stopping  # pylint: disable=g-import-not-at-top
  config, whole_dir, whole = small_study
  staged = tmp_path / "staged"
  assert study.job_names(config) == ["truth-r1", "pooling"]
  with pytest.raises(GtesimError, match="holds no production models of this config"):
    study.run(config, staged, stage="job", job="pooling")
  study.run(config, staged, stage="pretrain")
  study.run(config, staged, stage="job", job="0")
  with pytest.raises(GtesimError, match="not finished: pooling"):
    study.run(config, staged, stage="report")
  with pytest.raises(GtesimError, match="is not a job of this study; its jobs: truth-r1, pooling"):
    study.run(config, staged, stage="job", job="nope")

  class StopAfterFirstChunk(stopping.StopRequests):

    def requested(self):
      self.signal_name = "SIGTERM"
      return True

  with pytest.raises(stopping.Stopped, match="at step 10 of 20"):
    study.run(config, staged, stage="job", job="pooling", stop=StopAfterFirstChunk())
  assert checkpoints.Checkpoints(staged / "runs" / "pooling" / "checkpoints").all_steps() == [10]
  def no_fresh_start(*args):
    raise AssertionError("the job started again from step 0")
  with monkeypatch.context() as patch:
    patch.setattr(study.simulate, "start_history", no_fresh_start)
    study.run(config, staged, stage="job", job="1")
  assert_same_tables(staged / "runs" / "pooling", whole_dir / "runs" / "pooling")
  report = study.run(config, staged, stage="report")
  assert without_cost(report) == without_cost(whole)
  on_disk = [json.loads((d / "study.json").read_text()) for d in (whole_dir, staged)]
  assert without_cost(on_disk[0]) == without_cost(on_disk[1])


def test_a_second_study_on_the_same_out_is_refused_naming_the_holder(tiny_root, tmp_path):
  from gtesim.driver import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  config = _study_config(tiny_root, repetitions=1)
  with workdir_lib.lock(tmp_path, holder="study stage all", what="study", option="--out"):
    with pytest.raises(GtesimError, match=r"in use by another study \(pid \d+ on .*: study "
                       "stage all\\); wait for it to finish or choose another --out"):
      study.run(config, tmp_path)
  with workdir_lib.lock(tmp_path, shared=True, holder="study stage job pooling",
                        what="study", option="--out"):
    with workdir_lib.lock(tmp_path, shared=True, holder="study stage job cluster",
                          what="study"):  # The jobs of one graph share the lock.
      pass
    with pytest.raises(GtesimError, match="study stage job cluster"):
      study.run(config, tmp_path, stage="report")


def test_sweep_points_on_fewer_repetitions_equal_those_repetitions_of_a_full_run(tiny_root,
                                                                              tmp_path):
  """study.sweep_repetitions: the main point and the A/A on all B repetitions, the sweep
  points in jobs of their own on the first few; each of those repetitions is the one a job on
  all B would give (bit for bit), and is paired with its own truth."""
  config = _study_config(tiny_root, repetitions=4)
  config.study.designs = ("pooling",)
  config.study.p_values = (0.5, 0.2)
  config.study.alpha_gaps = (0.0, 0.5, 1.0)
  config.study.weighting_video = False
  config.study.frozen_truth = False
  config.study.sweep_repetitions = 2
  config.study.bootstrap = 0
  jobs = {j.name: j for j in plan.plan(config)}
  assert list(jobs) == ["truth-r1", "truth-sweep-r1", "pooling", "pooling-sweep"]
  assert [q[:2] for q in jobs["pooling"].worlds.points] == [(0.5, 1.0), (0.5, 0.0)]
  assert [q[:2] for q in jobs["pooling-sweep"].worlds.points] == [(0.2, 1.0), (0.5, 0.5)]
  assert jobs["pooling-sweep"].config.repetitions == 2 == jobs["truth-sweep-r1"].config.repetitions
  summary = study.run(config, tmp_path)
  sweep = summary["designs"]["pooling"]["p=0.2,gap=1"]["click"]
  assert sweep["B"] == 2 and summary["designs"]["pooling"]["p=0.5,gap=1"]["click"]["B"] == 4
  assert summary["sweep_repetitions"] == 2

  full = _study_config(tiny_root, repetitions=4)  # Every point on all 4 repetitions.
  full.study = config.study.copy_and_resolve_references()
  full.study.sweep_repetitions = 0
  again = study.run(full, tmp_path / "full")
  entry = again["designs"]["pooling"]["p=0.2,gap=1"]["click"]
  assert entry["per_rep"][:2] == sweep["per_rep"]
  truth_full = again["truth"]["gap=0.5"]["click"]["per_rep"]
  assert summary["truth"]["gap=0.5"]["click"]["per_rep"] == truth_full[:2]


def test_production_states_and_switchback_variants(tiny_root, tmp_path):
  """study.production_states: each state its own production models (fewer rows, fewer
  epochs), truth and designs at the main point; study.switchback_variants: switchback again
  at each (period, burn-in) at the main point and the A/A."""
  config = _study_config(tiny_root, repetitions=3)
  config.study.designs = ("pooling", "switchback")
  config.study.p_values = (0.5,)
  config.study.alpha_gaps = (0.0, 1.0)
  config.study.weighting_video = config.study.frozen_truth = False
  config.study.production_states = (("cold", 256, 1),)
  config.study.state_designs = ("pooling",)
  config.study.state_repetitions = 2
  config.study.switchback_variants = ((5, 1),)
  config.study.bootstrap = 0
  jobs = {j.name: j for j in plan.plan(config)}
  assert list(jobs) == ["truth-r1", "pooling", "switchback", "switchback-every=5,burn_in=1",
                        "truth@cold-r1", "pooling@cold"]
  variant = jobs["switchback-every=5,burn_in=1"].config.experiment
  assert (variant.switchback.every, variant.switchback.burn_in) == (5, 1)
  cold = jobs["pooling@cold"]
  assert cold.state == "cold" and cold.config.pretrain.n_interactions == 256
  assert cold.config.pretrain.max_epochs == 1 and cold.config.repetitions == 2
  summary = study.run(config, tmp_path)
  state = summary["states"]["cold"]
  assert state["pretrain"]["rows"] == 256 and state["pretrain"]["epochs_run"] == 1
  assert state["B"] == 2 and state["designs"]["pooling"]["p=0.5,gap=1"]["click"]["B"] == 2
  assert (tmp_path / "production-cold" / "pretrain.json").exists()
  assert "switchback-every=5,burn_in=1" in summary["designs"]
  assert "## Mechanism: the production model's state" in (tmp_path / "report.md").read_text()
  staged = tmp_path / "staged"  # A state's job by itself, after the pretrain stage.
  study.run(config, staged, stage="pretrain")
  assert (staged / "production-cold" / "pretrain.json").exists()
  study.run(config, staged, stage="job", job="pooling@cold")
  assert_same_tables(staged / "runs" / "pooling@cold", tmp_path / "runs" / "pooling@cold")
  bad = _study_config(tiny_root, repetitions=3)
  bad.study.production_states = (("cold", 256),)
  with pytest.raises(GtesimError, match="study.production_states"):
    plan.plan(bad)


@pytest.mark.parametrize("name", ["study", "study_latent", "study_matrix", "study_mechanisms",
                                  "study_rankers", "study_sweeps"])
def test_every_study_config_plans(name):
  """Each committed study's config loads and plans (its jobs are what --list_jobs prints)."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  import pathlib  # pylint: disable=g-import-not-at-top
  path = pathlib.Path(__file__).resolve().parent.parent / "configs" / f"{name}.py"
  spec = importlib.util.spec_from_file_location(f"config_{name}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  jobs = plan.plan(config)
  # The mechanisms (B = 100) and the sweeps (B = 40) are sweeps of the main study's B = 200.
  assert config.repetitions >= {"study_mechanisms": 100, "study_sweeps": 40}.get(name, 200)
  truths = [j for j in jobs if j.name.startswith("truth-r")]
  assert len(truths) == config.study.truth_replicates >= 6
