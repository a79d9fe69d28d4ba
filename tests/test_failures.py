"""Runs that survive a cluster (issue 20): stops on SIGTERM that resume bit for bit, a damaged
newest checkpoint, write failures as one line, refusals that leave no state behind."""

import json
import os
import pathlib
import re
import resource
import shutil
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

from conftest import small_sim_config
from gtesim.driver import simulate
from gtesim.driver import stopping
from gtesim.errors import InputError

REPO = pathlib.Path(__file__).resolve().parents[1]
_STEPS = {"sim.n_steps": 30, "sim.validate_every": 5, "checkpoint_every": 10}


def _same_run(a: pathlib.Path, b: pathlib.Path):
  ra, rb = (json.loads((d / "result.json").read_text()) for d in (a, b))
  for part in ("gte", "gt", "gc"):
    assert ra[part] == rb[part]
  for table in ("steps.parquet", "metrics.parquet"):
    assert pq.read_table(a / table).to_pydict() == pq.read_table(b / table).to_pydict()


def test_a_sigterm_stop_checkpoints_and_resumes_bit_identical_even_past_a_damaged_checkpoint(
    tiny_root, tmp_path, monkeypatch):
  simulate.run(small_sim_config(tiny_root, **_STEPS), tmp_path / "full")
  cut = tmp_path / "cut"
  with pytest.raises(InputError, match="pretrain.n_interactions"):  # Refused by the data.
    simulate.run(small_sim_config(tiny_root, **_STEPS, **{"pretrain.n_interactions": 10**9}),
                 cut)
  assert [p.name for p in cut.iterdir()] in (["run.log"], [".lock", "run.log"])

  append = simulate.history_lib.append
  def signalled_append(history, out, evaluated, step):
    if step == 15:
      os.kill(os.getpid(), signal.SIGTERM)  # The real handler, as from SLURM.
    return append(history, out, evaluated, step)
  monkeypatch.setattr(simulate.history_lib, "append", signalled_append)
  with pytest.raises(stopping.Stopped, match=r"stopped by SIGTERM at step 15 of 30 "
                                             r"\(checkpointed\); resume with --resume"):
    simulate.run(small_sim_config(tiny_root, **_STEPS), cut)  # The refused run's log: no
    # obstacle.
  monkeypatch.undo()
  assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # Handlers restored.
  steps = sorted(int(p.name) for p in (cut / "checkpoints").iterdir() if p.name.isdigit())
  assert steps == [10, 15] and not (cut / "result.json").exists()
  damaged = tmp_path / "damaged"
  shutil.copytree(cut, damaged)

  simulate.run(small_sim_config(tiny_root, **_STEPS), cut, resume=True)
  _same_run(tmp_path / "full", cut)

  for path in (damaged / "checkpoints" / "15").rglob("*"):
    if path.is_file() and path.stat().st_size > 1000:
      path.write_bytes(path.read_bytes()[:100])  # Truncated, as by a full disk.
  (damaged / "checkpoints" / "20.orbax-checkpoint-tmp-123").mkdir()  # A killed save.
  simulate.run(small_sim_config(tiny_root, **_STEPS), damaged, resume=True)
  _same_run(tmp_path / "full", damaged)
  log = (damaged / "run.log").read_text()
  assert re.search(r"the checkpoint at step 15 does not restore \(.+\); moved to .*"
                   r"checkpoints-damaged/15, using the previous one", log)
  assert "resumed from the checkpoint at step 10" in log
  assert "removed the temporary checkpoint folder 20.orbax-checkpoint-tmp-123" in log
  assert not any("tmp" in p.name for p in (damaged / "checkpoints").iterdir())


def _cli(workdir, root, *extra, limit=None, wait_for=None):
  args = [sys.executable, str(REPO / "scripts" / "run.py"), "--config", "configs/global.py",
          f"--workdir={workdir}", f"--config.data.root={root}",
          "--config.data.synthetic.size=tiny", "--config.repetitions=1",
          "--config.sim.batch_size=8", "--config.sim.validate_every=5",
          "--config.checkpoint_every=10", "--config.pretrain.n_interactions=256",
          "--config.pretrain.batch_size=128", "--config.pretrain.max_epochs=1", *extra]
  preexec = None
  if limit is not None:
    preexec = lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
  proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                          cwd=REPO, preexec_fn=preexec)
  if wait_for is not None:
    log = pathlib.Path(workdir) / "run.log"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
      if log.exists() and wait_for in log.read_text():
        proc.send_signal(signal.SIGTERM)
        break
      time.sleep(0.05)
  _, err = proc.communicate(timeout=300)
  return proc.returncode, err


def test_the_cli_stops_on_sigterm_with_its_line_and_status_and_writes_fail_in_one_line(
    tiny_root, tmp_path):
  workdir = tmp_path / "stop"
  status, err = _cli(workdir, tiny_root, "--config.sim.n_steps=2000",
                     wait_for="[train] step 10/2000")
  assert status == stopping.STOPPED_STATUS and "Traceback" not in err, err[-2000:]
  last = (workdir / "run.log").read_text().strip().splitlines()[-1]
  match = re.fullmatch(r"\[run\] stopped by SIGTERM at step (\d+) of 2000 \(checkpointed\); "
                       r"resume with --resume", last)
  assert match and last in err
  steps = [p.name for p in (workdir / "checkpoints").iterdir()]
  assert match.group(1) in steps and not any("tmp" in s for s in steps)

  status, err = _cli(tmp_path / "full", tiny_root, "--config.sim.n_steps=20", limit=60_000)
  lines = [l for l in err.splitlines() if "] error:" in l]
  # Orbax's worker threads print their own tracebacks to stderr; the run's answer is one line.
  assert status == 2 and len(lines) == 1, err[-3000:]
  assert "EFBIG" in lines[0] and str(tmp_path / "full") in lines[0], lines[0]
  assert "Event loop is closed" not in err  # Tensorstore's late callbacks are quiet.
  assert (tmp_path / "full" / "run.log").read_text().strip().splitlines()[-1] == lines[0]


def test_an_unusable_workdir_is_one_line_and_a_config_refusal_writes_nothing(tiny_root,
                                                                          tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("not a folder")
  with pytest.raises(InputError, match=r"the workdir: creating or writing .*file/run failed: "
                                       r".*\((ENOTDIR|EEXIST)\); choose a --workdir"):
    simulate.run(small_sim_config(tiny_root), blocker / "run")
  with pytest.raises(InputError, match="sim.n_candidate"):
    simulate.run(small_sim_config(tiny_root, **{"sim.n_candidate": 0}), tmp_path / "refused")
  assert not (tmp_path / "refused").exists()


def test_processes_loading_a_fresh_data_folder_at_once_build_it_once_and_agree(tmp_path):
  """Two processes on a data root nobody loaded yet: one generates the synthetic data and
  builds each cache, the other waits for it (a lock per folder); both load the same data."""
  code = ("import sys, hashlib; sys.path.insert(0, {tests!r}); "
          "from conftest import tiny_synthetic_config; from gtesim import logs; "
          "from gtesim.data import dataset; logs.setup(); "
          "ds = dataset.load(tiny_synthetic_config({root!r})); "
          "print(ds.overview['fingerprint'], hashlib.sha256(ds.labels.tobytes()).hexdigest())"
          ).format(tests=str(REPO / "tests"), root=str(tmp_path / "root"))
  procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO) for _ in range(2)]
  outs = [p.communicate(timeout=300) for p in procs]
  assert all(p.returncode == 0 for p in procs), outs
  assert outs[0][0] == outs[1][0] and outs[0][0].strip()
  logged = outs[0][1] + outs[1][1]
  assert logged.count("generating the synthetic dataset") == 1, logged
  assert logged.count("building the standard cache from") == 1, logged


@pytest.mark.parametrize("resume, hint", [(None, "resume with --resume"),
                                          ("run the same command again to resume",
                                           "run the same command again to resume")])
def test_a_stop_says_how_its_entry_point_resumes(resume, hint):
  """scripts/run.py resumes with --resume, a study and the advisor by being run again: the
  stop's last line says which, with status 75."""
  code = ("from gtesim import cli; from gtesim.driver import stopping\n"
          "def main(argv):\n"
          "  raise stopping.Stopped('stopped by SIGTERM at step 3 of 9 (checkpointed)')\n"
          f"cli.run(main, tag='study', resume={resume!r})\n")
  done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                        timeout=120)
  assert done.returncode == stopping.STOPPED_STATUS, done.stderr[-2000:]
  assert done.stderr.strip().splitlines()[-1] == (
      f"[study] stopped by SIGTERM at step 3 of 9 (checkpointed); {hint}")
