"""Entry points: overview JSON and one clear line for bad input (SPEC §7)."""

import json
import pathlib
import subprocess
import sys

import pytest


from conftest import kuairand_folder

REPO = pathlib.Path(__file__).resolve().parents[1]
FIXTURE_FLAGS = [
    "--config.data.name=kuairand", "--config.data.video_p_test=0.0",
    "--config.data.features.user.numerical=('follow_user_num',)",
    "--config.data.features.user.log1p=()",
    "--config.data.features.user.categorical=('user_active_degree',)",
    "--config.data.features.video_basic.numerical=('video_duration',)",
    "--config.data.features.video_basic.log1p=()",
    "--config.data.features.video_basic.categorical=('video_type',)",
    "--config.data.features.video_basic.multi_hot=('tag',)",
    "--config.data.features.video_statistic.numerical=('show_cnt',)",
    "--config.data.features.video_statistic.log1p=()",
]


def prepare(*args):
  return subprocess.run([sys.executable, str(REPO / "scripts" / "prepare_data.py"),
                         "--config", str(REPO / "configs" / "global.py"), *args],
                        capture_output=True, text=True, cwd=REPO, timeout=300)


def test_prepare_prints_overview_json(tmp_path):
  root = kuairand_folder(tmp_path)
  out = prepare(f"--config.data.root={root}", *FIXTURE_FLAGS)
  assert out.returncode == 0, out.stderr
  summary = json.loads(out.stdout.strip().splitlines()[-1])
  assert summary["n_interactions"] == 10 and summary["n_users"] == 4
  assert summary["n_videos"] == 4 and summary["click_rate"] == pytest.approx(0.5)
  assert "[prepare] 4 users, 4 videos, 10 interactions" in out.stderr


def _one_clear_line(out, *fragments):
  assert out.returncode == 2
  assert "Traceback" not in out.stderr
  lines = [l for l in out.stderr.strip().splitlines() if "error:" in l]
  assert len(lines) == 1, out.stderr
  for fragment in fragments:
    assert fragment in lines[0], lines[0]


def test_unknown_config_key():
  _one_clear_line(prepare("--config.sim.n_step=3"), "[config] error:", "'sim.n_step' does not "
                  "exist", "did you mean 'sim.n_steps'")


def test_bad_config_value():
  _one_clear_line(prepare("--config.sim.n_steps=abc"), "[config] error:", "n_steps")


def test_missing_folder(tmp_path):
  _one_clear_line(prepare(f"--config.data.root={tmp_path / 'nope'}", *FIXTURE_FLAGS),
                  "[prepare] error:", "is not a folder")


def test_missing_file(tmp_path):
  root = kuairand_folder(tmp_path)
  (root / "data" / "user_features_pure.csv").unlink()
  _one_clear_line(prepare(f"--config.data.root={root}", *FIXTURE_FLAGS),
                  "no user file (user_features_*.csv)")


def test_missing_column(tmp_path):
  root = kuairand_folder(tmp_path)
  flags = [f if not f.startswith("--config.data.features.video_basic.categorical=") else
           "--config.data.features.video_basic.categorical=('vido_type',)"
           for f in FIXTURE_FLAGS]  # Given once: ml_collections joins a repeated tuple.
  _one_clear_line(prepare(f"--config.data.root={root}", *flags),
                  "video_features_basic_pure.csv: column 'vido_type' is not in the file")


def test_a_tuple_key_given_twice_is_refused(tmp_path):
  root = kuairand_folder(tmp_path)
  _one_clear_line(prepare(f"--config.data.root={root}", *FIXTURE_FLAGS,
                          "--config.data.features.video_basic.categorical=('music_type',)"),
                  "config key data.features.video_basic.categorical is given twice")


def test_non_numeric_value(tmp_path):
  root = kuairand_folder(tmp_path)
  path = root / "data" / "video_features_statistic_pure.csv"
  path.write_text(path.read_text().replace("100,1000", "100,many"))
  _one_clear_line(prepare(f"--config.data.root={root}", *FIXTURE_FLAGS),
                  "video_features_statistic_pure.csv: column 'show_cnt' must be numeric",
                  "'many'")


def test_run_end_to_end_with_overrides(tiny_root, tmp_path):
  """The main job, shrunk: label overrides by name reach the worlds."""
  out = subprocess.run(
      [sys.executable, str(REPO / "scripts" / "run.py"), "--config",
       str(REPO / "configs" / "global.py"), f"--workdir={tmp_path / 'run'}",
       f"--config.data.root={tiny_root}", "--config.data.synthetic.size=tiny",
       "--config.repetitions=1", "--config.sim.n_steps=10", "--config.sim.validate_every=5",
       "--config.checkpoint_every=5", "--config.sim.batch_size=8",
       "--config.pretrain.n_interactions=256", "--config.pretrain.batch_size=128",
       "--config.pretrain.max_epochs=1", "--config.labels.click.mlp.hidden=(8,)",
       "--config.labels.play_time.mlp.hidden=(8,)", "--config.labels.click.alpha_T=1.0",
       "--config.labels.play_time.alpha_T=0.0"],
      capture_output=True, text=True, cwd=REPO, timeout=600)
  assert out.returncode == 0, out.stderr
  result = json.loads((tmp_path / "run" / "result.json").read_text())
  assert result["gte"]["click"]["per_rep"] == [0.0]  # alpha_T now equals alpha_C.
  assert "[train] step 10/10" in out.stderr
  assert "ETA" in out.stderr and "at most" in out.stderr  # Steps' and epochs' progress.
  assert f"results in {tmp_path / 'run'} (result.json, figure.png" in out.stderr
  assert "Unable to initialize backend" not in out.stderr
  assert not (tmp_path / "run" / ".lock").exists()
