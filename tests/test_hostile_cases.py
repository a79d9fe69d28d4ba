"""The faults a hostile user found (issue 34): extreme hash bits, bad sweep tuples, a lone
process of a multi-task job, default workdirs started in the same second, resuming a finished
run, and the rough edges of a first run."""

import json
import os
import pathlib
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.special import ndtri

from conftest import fixture_config, kuairand_folder, small_sim_config
from gtesim import prng
from gtesim.config import checks as config_checks
from gtesim.config import defaults as default_config
from gtesim.data import dataset
from gtesim.data import synthetic
from gtesim.driver import figures
from gtesim.driver import simulate
from gtesim.driver import workdir as workdir_lib
from gtesim.environments import latent
from gtesim.errors import InputError

REPO = pathlib.Path(__file__).resolve().parents[1]
# Bit patterns at the ends of the 24 bits a float32 uniform keeps, and their neighbours.
EXTREME_BITS = (0x00000000, 0x000000FF, 0x00000100, 0x7FFFFFFF, 0x80000000, 0xFFFFFE00,
                0xFFFFFEFF, 0xFFFFFF00, 0xFFFFFF7F, 0xFFFFFFFF)


def _inverse_mix32(h: int) -> int:
  """The x with prng.mix32(x) == h (each step of lowbias32 is a bijection of uint32)."""
  mask = 0xFFFFFFFF
  def unxorshift(y, s):
    x = y
    for _ in range(32 // s + 1):
      x = y ^ (x >> s)
    return x & mask
  x = unxorshift(h, 16)
  x = (x * pow(0x846CA68B, -1, 2 ** 32)) & mask
  x = unxorshift(x, 15)
  x = (x * pow(0x7FEB352D, -1, 2 ** 32)) & mask
  return unxorshift(x, 16)


def test_uniforms_from_extreme_hash_bits_lie_where_their_use_needs_them():
  bits = jnp.asarray(EXTREME_BITS, jnp.uint32)
  assert _inverse_mix32(int(prng.mix32(jnp.uint32(123456789)))) == 123456789
  opened = np.asarray(prng.open_unit(bits))
  assert opened.dtype == np.float32
  assert (opened > 0).all() and (opened < 1).all(), opened  # For ndtri and log.
  assert np.isfinite(np.asarray(ndtri(prng.open_unit(bits)))).all()
  assert np.isfinite(np.asarray(jnp.log(prng.open_unit(bits)))).all()
  assert opened[-1] == np.float32(1 - 2 ** -24) and opened[0] == np.float32(2 ** -25)
  half = np.asarray(prng.half_open_unit(bits))  # For inverse-CDF searches: 0 is a value.
  assert (half >= 0).all() and (half < 1).all() and half[0] == 0
  assert half[-1] == np.float32(1 - 2 ** -24)
  every = jnp.arange(2 ** 24, dtype=jnp.uint32) << 8  # Every value the 24 bits can take.
  assert float(prng.open_unit(every).max()) < 1 and float(prng.open_unit(every).min()) > 0
  assert float(prng.half_open_unit(every | 0xFF).max()) < 1


def test_a_latent_pair_whose_hash_is_all_ones_gets_a_finite_outcome():
  """Before the fix, the pair's play-time noise uniform was exactly 1.0 and ndtri(1) = inf:
  one outcome in about 25 million, 3% of default-size latent runs stopped."""
  key = jax.random.key(7)
  seeds = np.asarray(jax.random.bits(key, (3, 2), jnp.uint32)).astype(np.uint64)
  user = 5
  inner = int(prng.mix32(jnp.uint32(user ^ int(seeds[2, 0]))))
  video = _inverse_mix32((_inverse_mix32(0xFFFFFFFF) - int(seeds[2, 1])) % 2 ** 32) ^ inner
  u = np.asarray(latent.pair_uniforms(key, jnp.asarray([user], jnp.uint32),
                                      jnp.asarray([video], jnp.uint32), 3))
  assert u[0, 2] == np.float32(1 - 2 ** -24)  # The all-ones hash, as constructed.
  assert (u > 0).all() and (u < 1).all()
  latent_truth = {"taste": jnp.zeros((8, 3)), "bias": jnp.zeros(8), "click_offset": 0.0,
                  "topic": jnp.zeros((1, 3)), "appeal": jnp.zeros(1),
                  "duration_ms": jnp.full(1, 20000.0)}
  out = synthetic.sampled_outcomes(latent_truth, jnp.asarray([user]), jnp.asarray([0]),
                                   jnp.asarray(u[:, :2] * 0), ndtri(jnp.asarray(u[:, 2])),
                                   xp=jnp)  # Clicked: the play time is the noisy watch.
  assert np.isfinite(np.asarray(out["play_time_ms"])).all()


@pytest.mark.parametrize("key,value,shown", [
    ("sweep.p_treatment", (0.5, float("nan")), "nan in (0.5, nan)"),
    ("sweep.p_treatment", ("(0.5,nan)",), "(0.5,nan) is not a tuple of finite numbers"),
    ("sweep.p_treatment", ("(0.5,abc)",), "(0.5,abc) is not a tuple of finite numbers"),
    ("sweep.alpha_gap", (0.0, -2.0, float("inf")), "inf in (0.0, -2.0, inf)"),
    ("sweep.alpha_gap", ("(0.0,-2.0,inf)",), "(0.0,-2.0,inf) is not a tuple"),
    ("sweep.epsilon", (0.1, "abc"), "'abc' in (0.1, 'abc')"),
    ("sweep.points", ((0.5, float("nan")),), "nan in (0.5, nan)"),
    ("experiment.p_treatment", float("nan"), "nan is not in (0, 1)"),
])
def test_a_nan_inf_or_word_in_a_sweep_is_refused_naming_key_and_value(key, value, shown):
  config = default_config.get_config()
  section, name = key.split(".")
  config[section][name] = value
  with pytest.raises(InputError) as err:
    config_checks.check(config)
  assert f"config key {key}: " in str(err.value) and shown in str(err.value), str(err.value)


def _cli(*args, env=None, timeout=300):
  return subprocess.run([sys.executable, str(REPO / "scripts" / "run.py"), "--config",
                         str(REPO / "configs" / "global.py"), *args], capture_output=True,
                        text=True, cwd=REPO, timeout=timeout, env=env)


def test_a_sweep_tuple_that_does_not_parse_is_one_line_from_the_command_line(tmp_path):
  out = _cli("--config.mode=pooling", "--config.sweep.p_treatment=(0.5,nan)",
             f"--workdir={tmp_path}")
  assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
  assert ("[run] error: config key sweep.p_treatment: (0.5,nan) is not a tuple of finite "
          "numbers") in out.stderr


def test_one_process_of_a_two_task_slurm_job_refuses_within_the_join_timeout(tmp_path):
  env = dict(os.environ, SLURM_JOB_ID="4301", SLURM_NTASKS="2", SLURM_PROCID="0",
             SLURM_LOCALID="0", SLURM_STEP_NODELIST="localhost", SLURM_NODELIST="localhost",
             SLURM_STEP_NUM_NODES="1", JAX_PLATFORMS="cpu",
             JAX_CPU_COLLECTIVES_IMPLEMENTATION="gloo")  # The second task never starts.
  tic = time.monotonic()
  out = _cli("--config.join_timeout_s=3", f"--workdir={tmp_path}", env=env, timeout=120)
  assert out.returncode == 2, out.stderr[-3000:]
  assert time.monotonic() - tic < 60
  errors = [l for l in out.stderr.splitlines() if "error:" in l]
  assert len(errors) == 1 and errors[0].startswith("[parallel] error: this process "
                                                   "(SLURM_PROCID=0 of SLURM_NTASKS=2)")
  assert "within join_timeout_s = 3 s" in errors[0] and "srun" in errors[0]
  assert "Check failure" not in out.stderr and "Fatal Python error" not in out.stderr
  env = {k: v for k, v in env.items() if not k.startswith("SLURM_STEP")}  # jax finds no
  out = _cli(f"--workdir={tmp_path}", env=env, timeout=120)  # coordinator: it raises at once.
  assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-3000:]
  assert ("[run] error: this process (SLURM_PROCID=0 of SLURM_NTASKS=2) could not start "
          "jax.distributed") in out.stderr


def test_default_workdirs_started_in_the_same_second_differ(tmp_path, monkeypatch):
  class Frozen(workdir_lib.datetime.datetime):
    @classmethod
    def now(cls, tz=None):
      return cls(2026, 12, 6, 12, 0, 0)
  monkeypatch.setattr(workdir_lib.datetime, "datetime", Frozen)
  made = [workdir_lib.default("global", tmp_path) for _ in range(3)]
  assert len(set(made)) == 3 and all(p.is_dir() for p in made)
  assert all(p.name.startswith("global-20261206-120000-") for p in made)
  names = iter(["aaaaaa", "aaaaaa", "bbbbbb"])  # A repeated suffix is drawn again.
  monkeypatch.setattr(workdir_lib.secrets, "token_hex", lambda n: next(names))
  assert workdir_lib.default("x", tmp_path).name.endswith("-aaaaaa")
  assert workdir_lib.default("x", tmp_path).name.endswith("-bbbbbb")


def test_resuming_a_finished_run_is_a_no_op_that_says_so(tiny_root, tmp_path):
  simulate.run(small_sim_config(tiny_root, repetitions=1), tmp_path)
  files = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()
           and p.name != "run.log"}
  assert ".lock" not in files  # A finished run leaves no lock file behind.
  again = simulate.run(small_sim_config(tiny_root, repetitions=1), tmp_path, resume=True)
  assert again == json.loads(files["result.json"])
  assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()
          and p.name != "run.log"} == files  # result.json (its timing too) byte-identical.
  log = (tmp_path / "run.log").read_text()
  assert "already finished its 20 steps: nothing to resume" in log
  with pytest.raises(InputError, match="sim.n_steps is 10, fewer than the 20"):
    simulate.run(small_sim_config(tiny_root, repetitions=1, **{"sim.n_steps": 10}), tmp_path,
                 resume=True)
  extended = simulate.run(small_sim_config(tiny_root, repetitions=1, **{"sim.n_steps": 30}),
                          tmp_path, resume=True)  # Extending still runs.
  assert extended["n_steps"] == 30


def test_a_lock_removed_by_its_holder_is_not_shared_by_two_later_holders(tmp_path):
  with workdir_lib.lock(tmp_path):
    assert (tmp_path / ".lock").exists()
  assert not (tmp_path / ".lock").exists()
  with workdir_lib.lock(tmp_path, shared=True, holder="a"):
    with workdir_lib.lock(tmp_path, shared=True, holder="b"):
      with pytest.raises(InputError, match="in use by another run"):
        with workdir_lib.lock(tmp_path):
          pass
  assert (tmp_path / ".lock").exists()  # Shared holders leave it (others may hold it).


def test_synthetic_data_goes_to_the_repository_from_any_directory(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  assert synthetic.default_base() == REPO / "data" / "synthetic"


def test_the_figure_says_the_gte_and_the_loss_units(monkeypatch, tmp_path):
  config = default_config.get_config()
  result = {"gt": {}, "gte": {"click": {"mean": -0.065, "se": 0.00046},
                    "play_time": {"mean": 37324.0, "se": 650.0}}}
  title = figures.headline(config, result)
  assert "true GTE per recommendation" in title and "click -0.065 ± 0.00046" in title
  assert "play_time +3.732e+04 ± 6.5e+02 ms" in title
  axes = {p[0]: p[1] for p in figures.panels(config)}
  assert "log1p(ms)" in axes["play_time loss"]
  drawn = {}
  monkeypatch.setattr(figures, "save_figure", lambda fig, stem: drawn.update(
      title=fig.get_suptitle(), ylabels=[a.get_ylabel() for a in fig.axes]))
  table = {"step": [0, 10], "world": ["GT", "GT"], "split": ["val", "val"],
           "play_time/loss": [4.0, 3.9]}
  figures.figure(tmp_path / "figure", table, figures.panels(config), title)
  assert drawn["title"] == title  # The GTE, not a panel's title.
  assert any("log1p(ms)" in y for y in drawn["ylabels"])


def test_orbax_leftovers_leave_no_noise_but_other_reports_pass():
  code = """
import gc
from gtesim.driver import checkpoints
class Pending:
  def __await__(self):
    yield
def make(name):
  async def read():
    try:
      await Pending()
    except BaseException:
      raise Exception("See full TensorStore details: <bound method pybind11_detail...>")
  read.__qualname__ = name
  return read
class LateCallback:  # What tensorstore's write callbacks raise after a failed save.
  def __del__(self):
    raise RuntimeError("Event loop is closed")
checkpoints.quiet_orbax_leftovers()
for name in ("_read_array_index_and_device_put", "unrelated"):
  c = make(name)(); c.send(None); del c; gc.collect()
LateCallback()
gc.collect()
"""
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=REPO, timeout=120)
  assert out.returncode == 0, out.stderr
  assert out.stderr.count("Exception ignored") == 1 and "unrelated" in out.stderr


def test_a_cut_off_log_line_is_named_by_its_number(tmp_path):
  root = kuairand_folder(tmp_path)
  path = root / "data" / "log_standard_4_08_to_4_21_pure.csv"
  lines = path.read_text().splitlines()
  lines[2] = lines[2][:9]  # File line 3, cut as by a full disk.
  path.write_text("\n".join(lines) + "\n")
  with pytest.raises(InputError) as err:
    dataset.load(fixture_config(root))
  assert f"{path}, line 3: 3 field(s) where the header has 10" in str(err.value), err.value
  assert "a cut-off or damaged line" in str(err.value)
