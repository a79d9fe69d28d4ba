"""Shared test helpers: tiny KuaiRand-format folders and configs."""

import os
import pathlib
import tempfile

import jax
import numpy as np
import pytest

from gtesim.config import defaults as default_config

# Many tests compile the same simulation: share compiled executables through JAX's persistent
# cache (also with the subprocesses the tests start).
_CACHE = os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                               os.path.join(tempfile.gettempdir(), "gtesim-test-jax-cache"))
jax.config.update("jax_compilation_cache_dir", _CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)

LOG_HEADER = "user_id,video_id,date,is_click,is_like,long_view,play_time_ms,duration_ms,is_rand,tab"


def write(path: pathlib.Path, text: str) -> pathlib.Path:
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(text)
  return path


def kuairand_folder(root: pathlib.Path, version="pure", parts=False) -> pathlib.Path:
  """A tiny KuaiRand version with the real files' quirks.

  4 users (ids 10, 11, 12, 13) and 4 videos (100..103) in the logs; user 13 and video 103
  have no feature rows; user 99 and video 999 have features but no logs. The last standard
  row is an exact duplicate of the one before it.
  """
  std1 = [LOG_HEADER, "10,100,20220408,1,0,1,12000,20000,0,1", "10,101,20220409,0,0,0,0,8000,0,1",
          "11,100,20220410,1,1,1,30000,20000,0,2"]
  std2 = [LOG_HEADER, "11,102,20220422,0,0,0,500,9000,0,1", "12,101,20220423,1,0,0,4000,8000,0,1",
          "13,103,20220424,0,0,0,0,7000,0,1", "13,103,20220424,0,0,0,0,7000,0,1"]
  rand = [LOG_HEADER, "10,102,20220425,0,0,0,0,9000,1,1", "12,100,20220426,1,0,1,19000,20000,1,1",
          "13,101,20220427,1,0,0,2000,8000,1,1"]
  users = ["user_id,user_active_degree,is_live_streamer,follow_user_num,onehot_feat4,"
           "register_days",
           "10,full_active,-124,514,1.0,799", "11,high_active,1,457,,1474",
           "12,UNKNOWN,-124,8,4.0,231", "99,full_active,0,3,2.0,10"]
  basic = ["video_id,author_id,video_type,upload_dt,upload_type,visible_status,video_duration,"
           "server_width,music_type,tag",
           "100,7,NORMAL,2022-04-10,LongImport,0.0,87433.0,720.0,9.0,39",
           '101,8,AD,2022-04-10,Kmovie,0.0,,720.0,,"20,43"',
           "102,9,UNKNOWN,2022-04-09,ShortImport,0.0,9233.0,1080.0,4.0,",
           "999,9,NORMAL,2022-04-09,Web,0.0,100.0,720.0,4.0,5"]
  stats = ["video_id,show_cnt,play_cnt,follow_user_num", "100,1000,400,3", "101,50,,0",
           "102,7,2,1", "999,1,1,0"]
  folder = root / f"KuaiRand-{version}" / "data"
  if parts:
    write(folder / f"log_standard_4_08_to_4_21_{version}_part1.csv", "\n".join(std1) + "\n")
    write(folder / f"log_standard_4_08_to_4_21_{version}_part2.csv",
          "\n".join([LOG_HEADER] + std2[1:]) + "\n")
  else:
    write(folder / f"log_standard_4_08_to_4_21_{version}.csv", "\n".join(std1) + "\n")
    write(folder / f"log_standard_4_22_to_5_08_{version}.csv", "\n".join(std2) + "\n")
  write(folder / f"log_random_4_22_to_5_08_{version}.csv", "\n".join(rand) + "\n")
  write(folder / f"user_features_{version}.csv", "\n".join(users) + "\n")
  write(folder / f"video_features_basic_{version}.csv", "\n".join(basic) + "\n")
  if parts:
    write(folder / f"video_features_statistic_{version}_part1.csv", "\n".join(stats[:3]) + "\n")
    write(folder / f"video_features_statistic_{version}_part2.csv",
          "\n".join(stats[:1] + stats[3:]) + "\n")
  else:
    write(folder / f"video_features_statistic_{version}.csv", "\n".join(stats) + "\n")
  return folder.parent


MATRIX_HEADER = "user_id,video_id,play_duration,video_duration,time,date,timestamp,watch_ratio"
_DAILY_HEADER = ("video_id,date,author_id,video_type,upload_dt,upload_type,visible_status,"
                 "video_duration,video_width,video_height,music_id,video_tag_id,video_tag_name,"
                 "show_cnt,play_cnt,complete_play_cnt,play_progress,like_cnt,share_cnt")


def _matrix_row(u, v, ratio, duration=10_000):
  play = int(round(ratio * duration))
  return (f'{u},{v},{play},{duration},"2020-07-05 00:08:23.438",20200705,1593878903.438,'
          f"{ratio}")


def kuairec_folder(root: pathlib.Path) -> pathlib.Path:
  """A tiny KuaiRec 2.0 folder (`KuaiRec 2.0/data/`) with the real files' quirks.

  Small matrix: users 1, 2, 3 x videos 10..13 less the blocked pair (3, 13): 11 rows, watch
  ratios 0.0 .. 3.5 (4 of them >= 2). Big matrix: 8 rows over users 1..5 and videos 10..14 (one
  row repeated). Video 10 has two daily rows, the later date listed first (show_cnt 500 on
  2020-07-06, 100 on 2020-07-05). item_categories' `feat` is a quoted list; social_network and
  kuairec_caption_category (not valid CSV) are present and must never be read.
  """
  ratios = {(1, 10): 0.5, (1, 11): 2.0, (1, 12): 0.0, (1, 13): 1.2, (2, 10): 3.5,
            (2, 11): 0.9, (2, 12): 2.4, (2, 13): 0.1, (3, 10): 1.0, (3, 11): 0.3,
            (3, 12): 2.2}
  small = [MATRIX_HEADER] + [_matrix_row(u, v, r) for (u, v), r in ratios.items()]
  big = [MATRIX_HEADER] + [_matrix_row(u, v, r) for u, v, r in (
      (1, 14, 0.4), (4, 10, 1.5), (4, 11, 2.5), (5, 12, 0.0), (5, 14, 0.8), (2, 14, 1.1),
      (4, 13, 0.2), (4, 13, 0.2))]
  import gzip  # pylint: disable=g-import-not-at-top
  asset = pathlib.Path(__file__).resolve().parents[1] / "gtesim" / "assets" / "kuairand_pure"
  with gzip.open(asset / "user_features_pure.csv.gz", "rt") as f:
    lines = f.read().splitlines()[:7]
  users = [lines[0]] + [f"{i}," + line.split(",", 1)[1] for i, line in
                        zip((1, 2, 3, 4, 5, 77), lines[1:])]
  daily = [_DAILY_HEADER,
           '10,20200706,7,NORMAL,2020-06-01,LongImport,public,20000,720,1280,5,3,"美食,生活",500,'
           "200,50,0.41,20,1",
           '10,20200705,7,NORMAL,2020-06-01,LongImport,public,20000,720,1280,5,3,"美食,生活",100,'
           "40,10,0.40,4,0",
           "11,20200706,8,AD,2020-06-02,Kmovie,public,9000,720,1280,6,1,游戏,50,,5,,2,0",
           "12,20200706,9,NORMAL,2020-06-03,Web,private,,1080,1920,7,2,,7,2,1,0.2,0,0",
           "13,20200706,9,NORMAL,2020-06-03,Web,public,3000,1080,1920,7,2,,9,3,1,0.3,1,0",
           "14,20200706,9,NORMAL,2020-06-03,Web,public,3000,1080,1920,7,2,,9,3,1,0.3,1,0"]
  categories = ["video_id,feat", '10,"[27, 9]"', '11,"[9]"', '12,"[]"', '13,"[4, 27]"',
                '14,"[8]"']
  folder = root / "KuaiRec 2.0" / "data"
  write(folder / "small_matrix.csv", "\n".join(small) + "\n")
  write(folder / "big_matrix.csv", "\n".join(big) + "\n")
  write(folder / "user_features.csv", "\n".join(users) + "\n")
  write(folder / "item_daily_features.csv", "\n".join(daily) + "\n")
  write(folder / "item_categories.csv", "\n".join(categories) + "\n")
  write(folder / "social_network.csv", 'user_id,friend_list\n1,"[2, 3]"\n')
  write(folder / "kuairec_caption_category.csv",
        'video_id,manual_cover_text,caption\n10,"a "quoted" cover,\n')
  return folder.parent


def kuairec_config(root):
  """configs/kuairec.py's settings reading kuairec_folder(root)."""
  config = default_config.use_kuairec(default_config.get_config())
  config.data.root = str(root)
  config.data.user_p_val = 0.25
  config.data.video_p_test = 0.0
  return config


def fixture_config(root):
  """A config reading kuairand_folder(root), declaring features its tables have."""
  config = default_config.get_config()
  config.data.name = "kuairand"
  config.data.root = str(root)
  config.data.user_p_val = 0.25
  config.data.video_p_test = 0.0
  f = config.data.features
  f.user.numerical = ("follow_user_num", "register_days")
  f.user.log1p = ("follow_user_num",)
  f.user.categorical = ("user_active_degree", "is_live_streamer", "onehot_feat4")
  f.video_basic.numerical = ("video_duration", "server_width")
  f.video_basic.log1p = ("video_duration",)
  f.video_basic.categorical = ("video_type", "music_type")
  f.video_statistic.numerical = ("show_cnt", "play_cnt", "follow_user_num")
  f.video_statistic.log1p = ("show_cnt", "play_cnt")
  return config


def tiny_synthetic_config(root):
  """The default config on the tiny synthetic dataset written under `root`."""
  config = default_config.get_config()
  config.data.root = str(root)
  config.data.synthetic.size = "tiny"
  return config


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory):
  """A folder holding the tiny synthetic dataset, generated once per session."""
  return tmp_path_factory.mktemp("synthetic")


def small_sim_config(root, **overrides):
  """Tiny synthetic data and a few-second simulation."""
  config = tiny_synthetic_config(root)
  config.repetitions = 2
  config.checkpoint_every = 10
  config.pretrain.n_interactions = 512
  config.pretrain.max_epochs = 2
  config.pretrain.batch_size = 128
  config.sim.n_steps = 20
  config.sim.batch_size = 8
  config.sim.n_candidate = 4
  config.sim.validate_every = 10
  config.sim.eval_rows = 256
  config.estimator.batch_blocks = 4
  for label in config.labels.values():
    label.mlp.hidden = (16,)
  for key, value in overrides.items():
    node = config
    *path, last = key.split(".")
    for part in path:
      node = node[part]
    node[last] = value
  return config


def kuairec_sim_config(root, **overrides):
  """small_sim_config on the tiny synthetic KuaiRec 2.0 data (a fully observed matrix)."""
  config = small_sim_config(root, **overrides)
  default_config.use_kuairec(config, "synthetic-kuairec")
  config.data.synthetic.kuairec_size = "tiny"
  config.labels.long_view.threshold = 1.0
  for label in config.labels.values():
    label.mlp.hidden = (16,)
  return config


def compiled(config, modes=None):
  """(setup, simulation, compiled functions) of a config, through the public core."""
  from gtesim.core import mapping, simulation  # pylint: disable=g-import-not-at-top
  from gtesim.driver import setup as setup_lib  # pylint: disable=g-import-not-at-top
  setup = setup_lib.build(config, modes)
  sim = simulation.make_simulation(config, setup)
  return setup, sim, mapping.compile_simulation(sim, setup.mesh)


def run_two_processes(code: str, job_id: str, timeout=900) -> str:
  """Runs `code` as two JAX processes joined under emulated SLURM variables (gloo CPU
  collectives); asserts both succeed and returns process 0's stderr."""
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  repo = pathlib.Path(__file__).resolve().parents[1]
  procs = []
  for rank in range(2):
    env = dict(os.environ, SLURM_JOB_ID=job_id, SLURM_NTASKS="2", SLURM_PROCID=str(rank),
               SLURM_LOCALID=str(rank), SLURM_STEP_NODELIST="localhost",
               SLURM_NODELIST="localhost", SLURM_STEP_NUM_NODES="1", SLURM_JOB_NUM_NODES="1",
               JAX_CPU_COLLECTIVES_IMPLEMENTATION="gloo", JAX_PLATFORMS="cpu")
    procs.append(subprocess.Popen([sys.executable, "-c", code], env=env, cwd=repo,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
  outs = [p.communicate(timeout=timeout) for p in procs]
  for p, (_, err) in zip(procs, outs):
    assert p.returncode == 0, err[-3000:]
  return outs[0][1]


def assert_same_tables(a: pathlib.Path, b: pathlib.Path,
                       tables=("steps.parquet", "metrics.parquet")) -> None:
  """Two run folders hold the same Parquet tables, bit for bit (NaN where NaN; a merged run's
  columns may come in another order)."""
  import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
  for table in tables:
    ta, tb = (pq.read_table(d / table).to_pydict() for d in (a, b))
    assert sorted(ta) == sorted(tb), table
    for column in ta:
      np.testing.assert_array_equal(np.asarray(ta[column]), np.asarray(tb[column]),
                                    err_msg=f"{table}: {column}")


def small_study_config(root):
  """A two-job study (truth, pooling at the main point and its A/A) on the tiny data."""
  config = small_sim_config(root)
  config.study = default_config.study_section()
  config.study.designs = ("pooling",)
  config.study.p_values = (0.5,)
  config.study.alpha_gaps = (0.0, 1.0)
  config.study.weighting_video = False
  config.study.frozen_truth = False
  return config


@pytest.fixture(scope="session")
def small_study(tiny_root, tmp_path_factory):
  """small_study_config run in one process: (config, its folder, the summary)."""
  from gtesim.study import execute  # pylint: disable=g-import-not-at-top
  config, out = small_study_config(tiny_root), tmp_path_factory.mktemp("one-process-study")
  return config, out, execute.run(config, out)


def without_cost(summary):
  """A study's numbers without what each invocation cost (its seconds, its command)."""
  out = {k: v for k, v in summary.items() if k not in ("cost", "command")}
  out["pretrain"] = {k: v for k, v in out["pretrain"].items() if k != "wall_s"}
  return out
