"""The advisor end to end on tiny data: its last line is the verdict's JSON, it resumes after a
kill to the verdict of an uninterrupted run, and it refuses what it cannot do."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from conftest import small_sim_config
from gtesim.config import defaults
from gtesim.errors import InputError
from gtesim.study import advise

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIG = '''
import sys
sys.path.insert(0, {tests!r})
from test_advise import tiny_advise_config


def get_config():
  return tiny_advise_config({root!r})
'''


def tiny_advise_config(root):
  """Pooling scored by the difference in means and CUPED, 2 batches of 2 repetitions."""
  config = small_sim_config(root)
  config.advise = defaults.advise_section()
  config.advise.designs = ("pooling",)
  config.advise.batch = 2
  config.advise.max_batches = 2
  config.advise.truth_replicates = 2
  config.advise.bootstrap = 200
  config.advise.alpha = 1e-6  # Never decided at B = 4: both batches run, the second is killed.
  config.estimator.names = ("cuped",)
  return config


def _without_cost(verdict):
  return {k: v for k, v in verdict.items() if k not in ("cost_s", "study_dir")}


def test_the_advisor_resumes_after_a_kill_to_the_uninterrupted_verdict(tiny_root, tmp_path):
  whole = advise.run(tiny_advise_config(tiny_root), tmp_path / "whole")
  verdict = whole["verdict"]
  assert list(verdict) == list(advise.KEYS)
  assert verdict["B"] == 4 and verdict["design"] == "pooling"
  assert verdict["estimator"] in ("difference_in_means", "cuped")
  assert not verdict["decided"] and "max_batches" in whole["why_not_decided"]
  assert [b["index"] for b in whole["batches"]] == [0, 1]
  # The cells are the package's paired statistics over all 4 repetitions.
  ranked = whole["looks"][-1]["ranked"]
  assert set(ranked) == {"pooling", "pooling+cuped"}
  assert ranked[whole["looks"][-1]["best"]["design"] + (
      "" if verdict["estimator"] == "difference_in_means" else "+cuped")]["rmse"] == (
          pytest.approx(verdict["rmse"]))

  cfg = tmp_path / "advise_config.py"
  cfg.write_text(CONFIG.format(tests=str(REPO / "tests"), root=str(tiny_root)))
  out = tmp_path / "killed"
  cmd = [sys.executable, "scripts/advise.py", f"--config={cfg}", f"--out={out}"]
  proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          start_new_session=True)
  deadline = time.time() + 600
  while not list((out / "batches" / "1" / "runs").glob("*/result.json")):  # Mid-batch 2.
    assert proc.poll() is None and time.time() < deadline, proc.stderr.read()[-3000:]
    time.sleep(0.2)
  os.killpg(proc.pid, signal.SIGKILL)
  proc.wait()
  state = json.loads((out / advise.STATE).read_text())
  assert len(state["batches"]) == 1  # Batch 1 was cut short.
  done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stderr[-3000:]
  lines = done.stdout.strip().splitlines()
  assert lines[-2].startswith("Not decided (advise.max_batches = 2 batches were run)")
  resumed = json.loads(lines[-1])
  assert _without_cost(resumed) == _without_cost(verdict)
  assert resumed["study_dir"] == str(out)


def test_the_advisor_refuses_bad_keys_and_another_config_in_its_folder(tiny_root, tmp_path):
  for key, value, match in (("designs", ("nope",), r"advise\.designs: 'nope'"),
                            ("batch", 1, r"advise\.batch"),
                            ("truth_replicates", 1, r"advise\.truth_replicates"),
                            ("label", "watch", r"advise\.label: 'watch'"),
                            ("alpha", 1.5, r"advise\.alpha")):
    config = tiny_advise_config(tiny_root)
    config.advise[key] = value
    with pytest.raises(InputError, match=match):
      advise.run(config, tmp_path / "bad")
  (tmp_path / "other").mkdir()
  other = tiny_advise_config(tiny_root)
  (tmp_path / "other" / advise.STATE).write_text(json.dumps(
      {"config": {"different": True}, "batches": [], "looks": []}))
  with pytest.raises(InputError, match="another config"):
    advise.run(other, tmp_path / "other")


def _write_batch(out, errors: dict, truth, gen):
  """A batch's per_rep.parquet: 2 truth replicates around `truth` [B] and, per design job,
  estimates truth + errors[job] with a welch SE of 1 and its 95% CI."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import pyarrow as pa  # pylint: disable=g-import-not-at-top
  import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
  from gtesim.study import compact  # pylint: disable=g-import-not-at-top
  rows = {c: [] for c in ("job", "point", "p_treatment", "alpha_gap", "epsilon", "estimator",
                          "label", "quantity", "method", "rep", "value")}

  def add(job, est, quantity, method, values):
    for b, v in enumerate(values):
      for c, x in zip(rows, (job, 0, 0.5, 1.0, None, est, "click", quantity, method, b,
                             float(v))):
        rows[c].append(x)
  for k, shift in ((1, -0.01), (2, 0.01)):
    add(f"truth-r{k}", "", "gte", "", truth + shift + 0.001 * gen.normal(size=len(truth)))
  for job, err in errors.items():
    est = truth + err
    add(job, "difference_in_means", "estimate", "", est)
    add(job, "difference_in_means", "se", "welch", np.ones_like(est))
    add(job, "difference_in_means", "ci_low", "welch", est - 1.96)
    add(job, "difference_in_means", "ci_high", "welch", est + 1.96)
  out.mkdir(parents=True)
  pq.write_table(pa.table(rows), out / compact.TABLE)


def test_the_decision_separates_is_within_margin_or_waits(tiny_root, tmp_path):
  import numpy as np  # pylint: disable=g-import-not-at-top
  config = tiny_advise_config(tiny_root)
  with config.unlocked():
    config.labels = {"click": config.labels.click}
  config.advise.alpha, config.advise.max_batches, config.advise.batch = 0.05, 1, 200
  config.advise.margin = 0.05  # Of |GTE| = 1: above the waiting case's bound (0.12).
  gen = np.random.default_rng(0)
  truth = 1.0 + gen.normal(size=200)
  base = gen.normal(size=200)
  cases = {"separated": {"pooling": 0.5 * base, "splitting": base},
           "within margin": {"pooling": base + 0.05 * gen.normal(size=200),
                          "splitting": base + 0.05 * gen.normal(size=200)},
           "": {"pooling": base, "splitting": gen.permutation(base)}}  # Same RMSE.
  got_separated = None
  for how, errors in cases.items():
    out = tmp_path / (how or "waits")
    _write_batch(out / "batches" / "0", errors, truth, gen)
    got = advise.look(config, out, 1)
    got_separated = got if how == "separated" else got_separated
    assert got["how"] == how and got["decided"] == bool(how), (how, got["test"])
    assert got["B"] == 200
  assert got_separated["best"]["design"] == "pooling"


def test_the_bound_on_the_best_cell_holds_at_its_level():
  """best_bound's simultaneous upper bound on RMSE_best - min(other RMSE) covers its target
  at its level on repetitions of normal errors (the worst case: two cells close enough that
  the worse one is often ranked first), and it separates a cell that is clearly the best."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  gen = np.random.default_rng(3)

  def miss_and_separated(mus, sds, rho, n_rep, level, n_sim):
    true = np.hypot(mus, sds)
    miss = separated = 0
    for _ in range(n_sim):
      z = gen.normal(size=n_rep)
      err = {f"c{i}": mus[i] + sds[i] * (np.sqrt(rho) * z + np.sqrt(1 - rho)
                                         * gen.normal(size=n_rep)) for i in range(len(mus))}
      ranked = sorted(err, key=lambda c: np.mean(err[c] ** 2))
      upper = advise.best_bound(err, ranked, level)["upper"]
      b = int(ranked[0][1:])
      miss += true[b] - np.delete(true, b).min() > max(upper, 0.0)
      separated += upper < 0 and b == 0
    return miss / n_sim, separated / n_sim

  level, n_sim = 0.05, 3000
  miss, _ = miss_and_separated(np.array([0.3, 0.4]), np.ones(2), 0.5, 80, level, n_sim)
  assert miss < level + 4 * np.sqrt(level * (1 - level) / n_sim), miss
  miss, separated = miss_and_separated(np.array([0.0, 1.2, 1.2, 1.5]), np.ones(4), 0.8, 80,
                                       level, 500)
  assert miss < level + 4 * np.sqrt(level * (1 - level) / 500) and separated > 0.9, (
      miss, separated)


def test_a_resumed_advice_that_decides_earlier_stops_its_looks_and_cost_there(tiny_root,
                                                                             tmp_path):
  """Batches an earlier invocation ran past the look that now decides (a wider margin) are
  kept on disk but leave the advice: its B, cost and looks stop at the deciding look."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  config = tiny_advise_config(tiny_root)
  with config.unlocked():
    config.labels = {"click": config.labels.click}
  config.advise.max_batches, config.advise.batch = 3, 100
  gen = np.random.default_rng(5)
  base = gen.normal(size=100)
  for i in range(2):  # Pooling and splitting within 0.02 of each other's RMSE.
    _write_batch(tmp_path / "batches" / str(i), {"pooling": base, "splitting":
                 base + 0.02 * gen.normal(size=100)}, 1.0 + gen.normal(size=100), gen)
  state = {"config": advise._identity(config), "looks": [{}, {}],  # pylint: disable=protected-access
           "batches": [{"index": 0, "cost_s": 10.0}, {"index": 1, "cost_s": 20.0}]}
  (tmp_path / advise.STATE).write_text(json.dumps(state))
  got = advise.run(config, tmp_path)
  assert got["verdict"]["decided"] and got["verdict"]["B"] == 100
  assert got["verdict"]["cost_s"] == 10.0 and got["unused_batches"] == [1]
  assert len(got["looks"]) == 1 and got["looks"][0]["how"] == "within margin"


def test_the_verdict_in_words_says_undefined_for_an_interval_that_does_not_close():
  """At few repetitions an inflation factor's upper bound is null: the words say so instead of
  failing (the default advice decided at B = 40 with one such bound)."""
  best = {"design": "snapshot", "estimator": "cuped", "se_method": "user", "inflation": 1.13,
          "inflation_ci": [0.96, None], "bias_pct": 8.1, "bias_pct_ci": [1.6, 15.2],
          "rmse": 0.0135, "power": None, "wrong_sign": 0.0}
  last = {"label": "click", "how": "within margin", "best": best,
          "test": {"runner_up": "snapshot", "rmse": -0.002, "rmse_ci": [-0.0038, None],
                   "comparisons": {"snapshot": {}}, "upper": 0.0053, "level": 0.00625,
                   "margin_abs": 0.0054}}
  words = advise._words({"decided": True, "B": 40, "cost_s": 412.0}, last, "")  # pylint: disable=protected-access
  assert "widened by 1.13 [0.96, undefined] (power undefined" in words
  assert words.startswith("Run snapshot with the cuped estimator: no other cell's RMSE")
