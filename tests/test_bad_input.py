"""Bad input and nothing silently wrong (SPEC §7): workdir ownership, config keys, ranges, label
values, headers, NaN, the CLI's one-line errors, the cache."""

import json
import os
import pathlib
import re
import stat
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from conftest import LOG_HEADER, kuairand_folder, small_sim_config, write
from gtesim import logs
from gtesim.config import checks as config_checks
from gtesim.config import defaults as default_config
from gtesim.core import step
from gtesim.driver import simulate
from gtesim.data import dataset
from gtesim.errors import InputError, NumericalError

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_a_workdir_holding_a_run_is_refused_without_resume_or_overwrite(tiny_root, tmp_path):
  config = small_sim_config(tiny_root, repetitions=1)
  first = simulate.run(config, tmp_path)
  with pytest.raises(InputError, match="already holds a run.*--resume.*--overwrite"):
    simulate.run(small_sim_config(tiny_root, repetitions=1, seed=1), tmp_path)
  again = simulate.run(small_sim_config(tiny_root, repetitions=1, seed=1), tmp_path,
                         overwrite=True)
  assert again["seed"] == 1 and again["gte"] != first["gte"]
  saved = json.loads((tmp_path / "config.json").read_text())
  assert saved["seed"] == 1 and "seed 0" not in (tmp_path / "run.log").read_text()


def test_a_second_writer_is_refused_while_a_run_holds_the_workdir(tiny_root, tmp_path):
  from gtesim.driver import workdir  # pylint: disable=g-import-not-at-top
  with workdir.lock(tmp_path):
    code = ("import sys; sys.path.insert(0, {tests!r}); from conftest import small_sim_config; "
            "from gtesim.driver import simulate; simulate.run(small_sim_config({root!r}), {wd!r})"
            ).format(tests=str(REPO / "tests"), root=str(tiny_root), wd=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, timeout=300)
  assert out.returncode != 0 and "is in use by another run (pid" in out.stderr
  assert not (tmp_path / "config.json").exists()


def test_resume_refuses_fewer_steps_and_changed_data(tiny_root, tmp_path):
  simulate.run(small_sim_config(tiny_root, repetitions=1), tmp_path)
  with pytest.raises(InputError, match="sim.n_steps is 10, fewer than the 20"):
    simulate.run(small_sim_config(tiny_root, repetitions=1, **{"sim.n_steps": 10}), tmp_path,
                   resume=True)
  data = json.loads((tmp_path / "data.json").read_text())
  data["fingerprint"] = "0" * 16  # As if the files had changed since the run started.
  (tmp_path / "data.json").write_text(json.dumps(data))
  with pytest.raises(InputError, match="the data files changed since the run"):
    simulate.run(small_sim_config(tiny_root, repetitions=1, **{"sim.n_steps": 30}),
                   tmp_path, resume=True)


def test_a_misspelt_key_inside_a_config_is_refused():
  config = default_config.get_config()
  with config.unlocked():
    config.experiment.p_treatmnt = 0.2
  with pytest.raises(InputError, match="'experiment.p_treatmnt' does not exist.*did you mean "
                     "'experiment.p_treatment'"):
    config_checks.check(config)
  config = default_config.get_config()
  with config.labels.unlocked():
    config.labels.click.alpah_T = 1.0
  with pytest.raises(InputError, match="'labels.click.alpah_T' does not exist.*alpha_T"):
    config_checks.check(config)


@pytest.mark.parametrize("key,value,message", [
    ("labels.click.learning_rate", -1e-3, "labels.click.learning_rate: must be > 0"),
    ("experiment.weighting.g.learning_rate", 0.0, "weighting.g.learning_rate: must be > 0"),
    ("pretrain.max_epochs", 0, "pretrain.max_epochs: must be at least 1"),
    ("pretrain.batch_size", 0, "pretrain.batch_size: must be at least 1"),
    ("checkpoint_every", 0, "checkpoint_every: must be at least 1"),
    ("data.user_p_val", 0.0, "data.user_p_val: must be > 0"),
    ("labels.click.alpha_T", float("nan"), "labels.click.alpha_T: must be a finite number"),
    ("estimator.batch_blocks", 1, "estimator.batch_blocks: must be at least 2"),
    ("seed", -1, r"seed: -1 is outside \[0, 2\^32\)"),
    ("seed", 2 ** 32, r"seed: 4294967296 is outside \[0, 2\^32\)"),
    ("seed", 2 ** 40, "seed: 1099511627776 is outside"),
    ("seed", 2 ** 64, "seed: 18446744073709551616 is outside"),
    ("data.pack_seed", -3, "data.pack_seed: -3 is outside"),
    ("data.synthetic.seed", 2 ** 32, "data.synthetic.seed: 4294967296 is outside"),
    ("rep_offset", 2 ** 32 - 7, r"rep_offset: rep_offset \+ repetitions \(4294967297\)"),
])
def test_out_of_range_settings_are_refused_before_any_work(key, value, message):
  config = default_config.get_config()
  node = config
  *path, last = key.split(".")
  for part in path:
    node = node[part]
  node[last] = value
  with pytest.raises(InputError, match=message):
    config_checks.check(config)


def _fixture_with_log_row(tmp_path, row, line=None):
  """The KuaiRand fixture with one standard-log row replaced (or appended)."""
  from conftest import fixture_config  # pylint: disable=g-import-not-at-top
  root = kuairand_folder(tmp_path)
  path = root / "data" / "log_standard_4_08_to_4_21_pure.csv"
  lines = path.read_text().splitlines()
  if line is None:
    lines.append(row)
  else:
    lines[line - 1] = row
  path.write_text("\n".join(lines) + "\n")
  return fixture_config(root), path


@pytest.mark.parametrize("row,message", [
    ("10,102,20220409,2,0,0,0,8000,0,1", "'is_click' has 1 value(s) other than 0 and 1 (first "
     "at line 5: 2.0)"),
    ("10,102,20220409,-1,0,0,0,8000,0,1", "'is_click' has 1 value(s) other than 0 and 1"),
    ("10,102,20220409,1,0,0,-5,8000,0,1", "'play_time_ms' has 1 negative value(s) (first at "
     "line 5: -5.0)"),
])
def test_label_values_out_of_range_name_file_column_and_line(tmp_path, row, message):
  config, path = _fixture_with_log_row(tmp_path, row)
  with pytest.raises(InputError, match=re.escape(message)) as err:
    dataset.load(config)
  assert path.name in str(err.value)


def test_header_only_logs_and_bom_and_non_utf8_headers(tmp_path):
  from conftest import fixture_config  # pylint: disable=g-import-not-at-top
  root = kuairand_folder(tmp_path / "empty")
  for f in (root / "data").glob("log_*.csv"):
    f.write_text(LOG_HEADER + "\n")
  with pytest.raises(InputError, match="hold no rows, only headers"):
    dataset.load(fixture_config(root))
  root = kuairand_folder(tmp_path / "bom")
  users = root / "data" / "user_features_pure.csv"
  users.write_bytes(b"\xef\xbb\xbf" + users.read_bytes())
  assert dataset.load(fixture_config(root)).overview["n_users"] == 4  # The BOM is not a name.
  root = kuairand_folder(tmp_path / "latin1")
  users = root / "data" / "user_features_pure.csv"
  users.write_bytes(users.read_bytes().replace(b"register_days", b"r\xe9gister_days", 1))
  with pytest.raises(InputError, match="user_features_pure.csv: the header line is not UTF-8"):
    dataset.load(fixture_config(root))
  root = kuairand_folder(tmp_path / "empty")
  (root / "data" / "user_features_pure.csv").write_bytes(b"")
  with pytest.raises(InputError, match=r"user_features_pure.csv: the file is empty \(0 bytes"):
    dataset.load(fixture_config(root))


def test_a_non_numeric_value_names_its_file_line(tmp_path):
  from conftest import fixture_config  # pylint: disable=g-import-not-at-top
  root = kuairand_folder(tmp_path)
  path = root / "data" / "video_features_statistic_pure.csv"
  path.write_text(path.read_text().replace("102,7,2,1", "102,7,two,1"))
  with pytest.raises(InputError, match="column 'play_cnt' must be numeric .* holds 'two' at "
                     "line 4"):
    dataset.load(fixture_config(root))
  path.write_text(path.read_text().replace("\n102,", "\nv102,", 1))
  with pytest.raises(InputError, match="column 'video_id' must be numeric .* holds 'v102'.* "
                     "Ids must be integers: map them to integers in the file"):
    dataset.load(fixture_config(root))


def test_a_nan_stops_the_run_naming_step_repetition_label_and_keeps_the_checkpoint(
    tiny_root, tmp_path, monkeypatch):
  real_step = step.step

  def poisoned(spec, env, rep, point, world, t):
    world, out = real_step(spec, env, rep, point, world, t)
    loss = jnp.where(t >= 12, out.loss.at[..., 1].set(jnp.nan), out.loss)
    return world, out.replace(loss=loss)

  monkeypatch.setattr(step, "step", poisoned)
  config = small_sim_config(tiny_root, repetitions=2, **{"sim.n_steps": 20})
  with pytest.raises(NumericalError, match="non-finite training loss .* at step 13, "
                     "repetition 0, label 'play_time'"):
    simulate.run(config, tmp_path)
  assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()
                if p.name.isdigit()) == ["10"]
  assert not (tmp_path / "result.json").exists()


def test_cli_errors_are_one_line_and_end_run_log(tiny_root, tmp_path):
  def run(*args):
    return subprocess.run([sys.executable, str(REPO / "scripts" / "run.py"), *args],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
  def one_line(out, *fragments):
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
    lines = [l for l in out.stderr.strip().splitlines() if "error:" in l]
    assert len(lines) == 1, out.stderr
    for fragment in fragments:
      assert fragment in lines[0], lines[0]
    return lines[0]
  one_line(run("--config", "configs/nope.py"), "[config] error:", "'configs/nope.py' does not "
           "exist")
  bad = write(tmp_path / "syntax.py", "def get_config(:\n  pass\n")
  one_line(run("--config", str(bad)), "syntax.py, line 1: syntax error")
  typo = write(tmp_path / "typo.py", "from gtesim.config import defaults as default_config\n"
               "def get_config():\n  c = default_config.get_config()\n"
               "  c.sim.n_steps = 'many'\n  return c\n")
  one_line(run("--config", str(typo)), "typo.py, line 4: TypeError")
  misspelt = write(tmp_path / "misspelt.py",
                   "from gtesim.config import defaults as default_config\n"
                   "def get_config():\n  c = default_config.get_config()\n"
                   "  with c.unlocked():\n    c.experiment.p_treatmnt = 0.2\n  return c\n")
  one_line(run("--config", str(misspelt), f"--workdir={tmp_path / 'w1'}"),
           "'experiment.p_treatmnt' does not exist", "did you mean 'experiment.p_treatment'")
  # A key of the flat layout before the config sections: where it went.
  one_line(run("--config", "configs/ab.py:switchback", "--config.experiment.switch_every=7"),
           "'experiment.switch_every' does not exist", "it moved: 'experiment.switchback.every'")
  one_line(run("--config", "configs/global.py", "--config.labels.click.id_budget=7"),
           "it moved: 'labels.click.ids.budget'")
  bench = subprocess.run([sys.executable, str(REPO / "scripts" / "bench.py"),
                          "--config.sim.n_stepz=3"], capture_output=True, text=True, cwd=REPO,
                         timeout=300)  # Its default config: overrides parsed like run.py's.
  one_line(bench, "[config] error:", "'sim.n_stepz' does not exist")
  workdir = tmp_path / "nan"
  line = one_line(run("--config", "configs/global.py", f"--workdir={workdir}",
                      f"--config.data.root={tiny_root}", "--config.data.synthetic.size=tiny",
                      "--config.repetitions=1", "--config.sim.n_steps=10",
                      "--config.sim.validate_every=5", "--config.checkpoint_every=5",
                      "--config.sim.batch_size=8", "--config.pretrain.n_interactions=256",
                      "--config.pretrain.batch_size=128", "--config.pretrain.max_epochs=1",
                      "--config.labels.click.learning_rate=1e38"),
                  "[run] error: non-finite")
  assert (workdir / "run.log").read_text().strip().splitlines()[-1] == line


def test_the_cache_heals_and_is_shared_with_the_umask(tmp_path):
  from conftest import fixture_config  # pylint: disable=g-import-not-at-top
  logs.setup(tmp_path / "load.log")
  root = kuairand_folder(tmp_path)
  config = fixture_config(root)
  old = os.umask(0o022)
  try:
    first = dataset.load(config)
  finally:
    os.umask(old)
  cache = root / "data" / ".gtesim_cache"
  arrows = sorted(cache.glob("standard-*.arrow"))
  assert arrows and all(stat.S_IMODE(p.stat().st_mode) == 0o644 for p in cache.iterdir())
  data = arrows[0].read_bytes()
  arrows[0].write_bytes(data[:len(data) // 2])  # Truncated.
  again = dataset.load(config)
  np.testing.assert_array_equal(again.labels, first.labels)
  assert (tmp_path / "load.log").read_text().count("is damaged: its checksum") == 1
  garbled = bytearray(arrows[0].read_bytes())
  garbled[len(garbled) // 2] ^= 0xFF  # Same size, one byte changed.
  arrows[0].write_bytes(bytes(garbled))
  again = dataset.load(config)
  np.testing.assert_array_equal(again.labels, first.labels)
  assert (tmp_path / "load.log").read_text().count("is damaged: its checksum") == 2
