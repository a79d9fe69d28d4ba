"""The embedded synthetic KuaiRand-format dataset (SPEC §2 "Embedded default").

Users and videos are rows of the real KuaiRand-Pure feature tables (vendored in
`gtesim/assets/kuairand_pure`, CC BY-SA 4.0), resampled with new ids where a size needs more
videos than Pure has. A latent model over them generates the logs and the video statistics:

* video topic t_v (R^K): partly the mean embedding of the video's real tags, partly noise;
* video appeal a_v: partly its real video/upload type and duration, partly noise; the
  generated statistics table (show, play, like ... counts) is drawn from a_v;
* user taste u_u (R^K) and click bias b_u: partly embeddings of the user's real categorical
  features (activity degree, one-hot features), partly noise; history length grows with the
  user's activity degree and has a log-normal tail;
* click: logit = c0 + a_v + w_m * <u_u, t_v> / sqrt(K) + w_b * b_u, c0 calibrated to the
  configured click rate; the standard logs are biased towards what a production ranker shows
  (best of 3 random videos by logit + Gumbel noise), the random log is uniform;
* play time: clicked rows watch duration * r_uv * LogNormal(0, s^2), r_uv = 1.3 sigmoid(...);
  unclicked rows watch 0 with probability 3/4, else a tenth of that.

`feature_signal` is the share of the latent variance the observable features explain. The whole
latent truth is saved in `latent.npz`, and `expected_outcomes` computes P(click) and
E[play_time] of any (user, video) pair exactly.
"""

import hashlib
import importlib.resources
import json
import os
import pathlib
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from gtesim.data.sizes import SYNTHETIC_KUAIREC_SIZES, SYNTHETIC_SIZES
from gtesim import writing
from gtesim.errors import InputError, WriteError, os_error_message
from gtesim.logs import get_logger

log = get_logger("synthetic")

GENERATOR_VERSION = 1
_MODEL = dict(w_match=1.6, w_bias=0.6, play_sigma=0.35, skip_zero=0.75, skip_frac=0.1,
              rewatch=1.3)
_USER_TASTE_FIELDS = ("user_active_degree", "onehot_feat1", "onehot_feat2", "onehot_feat5",
                      "onehot_feat9", "onehot_feat10", "onehot_feat11")
_ACTIVITY = {"full_active": 3.0, "high_active": 2.0, "middle_active": 1.2, "low_active": 0.6,
             "single_low_active": 0.4, "2_14_day_new": 0.8, "30day_retention": 0.5,
             "day_new": 0.5, "UNKNOWN": 0.7}
_LOG_FILES = (("standard", "log_standard_4_08_to_4_21", 0.45),
              ("standard", "log_standard_4_22_to_5_08", 0.55),
              ("random", "log_random_4_22_to_5_08", 1.0))
_DAYS = {"log_standard_4_08_to_4_21": (20220408, 14), "log_standard_4_22_to_5_08": (20220422, 17),
         "log_random_4_22_to_5_08": (20220422, 17)}


def _asset(name) -> pa.Table:
  path = importlib.resources.files("gtesim") / "assets" / "kuairand_pure" / name
  with importlib.resources.as_file(path) as p:
    return pa_csv.read_csv(p, convert_options=pa_csv.ConvertOptions(strings_can_be_null=True))


def spec(data_config) -> dict:
  syn = data_config.synthetic
  if syn.size not in SYNTHETIC_SIZES:
    raise InputError(f"config key data.synthetic.size = '{syn.size}': use one of "
                     f"{', '.join(SYNTHETIC_SIZES)}.")
  return dict(version=GENERATOR_VERSION, size=syn.size, **SYNTHETIC_SIZES[syn.size],
              seed=syn.seed, latent_dim=syn.latent_dim, click_rate=syn.click_rate,
              feature_signal=syn.feature_signal, duplicate_rate=syn.duplicate_rate,
              rows_per_part=syn.rows_per_part, model=_MODEL)


def kuairec_spec(data_config) -> dict:
  syn = data_config.synthetic
  if syn.kuairec_size not in SYNTHETIC_KUAIREC_SIZES:
    raise InputError(f"config key data.synthetic.kuairec_size = '{syn.kuairec_size}': use one "
                     f"of {', '.join(SYNTHETIC_KUAIREC_SIZES)}.")
  return dict(version=GENERATOR_VERSION, format="kuairec", size=syn.kuairec_size,
              **SYNTHETIC_KUAIREC_SIZES[syn.kuairec_size], seed=syn.seed,
              latent_dim=syn.latent_dim, click_rate=syn.click_rate,
              feature_signal=syn.feature_signal, blocked_rate=syn.blocked_rate, model=_MODEL)


def _ensure(s: dict, base: pathlib.Path, prefix: str, make) -> pathlib.Path:
  """The folder of spec `s` under `base`, made by `make(s, folder)` if absent (atomically)."""
  key = hashlib.sha256(json.dumps(s, sort_keys=True).encode()).hexdigest()[:10]
  folder = base / f"{prefix}{s['size']}-seed{s['seed']}-{key}"
  if (folder / "COMPLETE").exists():
    return folder
  with writing.build_lock(base / f".{folder.name}.lock", f"the synthetic data {folder}", log):
    if not (folder / "COMPLETE").exists():  # Another process may have made it meanwhile.
      _generate(s, folder, make)
  return folder


def _generate(s: dict, folder: pathlib.Path, make) -> None:
  log.info("generating the synthetic dataset %s in %s", s["size"], folder)
  tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
  shutil.rmtree(tmp, ignore_errors=True)
  try:
    tmp.mkdir(parents=True)
    make(s, tmp)
    (tmp / "COMPLETE").write_text(json.dumps(s, indent=1))
  except OSError as err:
    shutil.rmtree(tmp, ignore_errors=True)
    raise WriteError(os_error_message(err, "generating the synthetic data in", tmp)) from None
  shutil.rmtree(folder, ignore_errors=True)
  os.replace(tmp, folder)


_CHECKOUT = pathlib.Path(__file__).resolve().parents[2]  # The repository, when run from one.


def default_base() -> pathlib.Path:
  """Where synthetic data goes when data.root is empty: the repository's data/synthetic when
  gtesim runs from a checkout (setup.cfg beside the package), wherever the command is started;
  else data/synthetic under the current directory."""
  base = _CHECKOUT if (_CHECKOUT / "setup.cfg").is_file() else pathlib.Path.cwd()
  return base / "data" / "synthetic"


def _base(data_config) -> pathlib.Path:
  return pathlib.Path(data_config.root) if data_config.root else default_base()


def ensure(data_config) -> pathlib.Path:
  """Returns the KuaiRand-format dataset's folder, generating it first if absent."""
  return _ensure(spec(data_config), _base(data_config), "", generate)


def ensure_kuairec(data_config) -> pathlib.Path:
  """Returns the KuaiRec-format dataset's folder, generating it first if absent."""
  return _ensure(kuairec_spec(data_config), _base(data_config), "kuairec-", generate_kuairec)


def _standardize(x):
  x = np.asarray(x, np.float64)
  sd = x.std(axis=0)
  return (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def _mix(signal, noise, share):
  """Unit-variance mix: `share` of the variance from `signal`."""
  return np.sqrt(share) * _standardize(signal) + np.sqrt(1 - share) * _standardize(noise)


def _embed(rng, column: pa.ChunkedArray, dim):
  """Random embedding of each distinct value of a column (missing is a value too)."""
  values = pc.fill_null(column.cast(pa.string()), "<missing>")
  uniq, inverse = np.unique(values.to_numpy(zero_copy_only=False).astype(str),
                            return_inverse=True)
  return rng.normal(size=(len(uniq), dim))[inverse]


def _pick_rows(rng, table, n, id_column):
  """n rows of a real table: a sorted subset keeping ids, or a resample with new ids."""
  if n <= table.num_rows:
    idx = np.sort(rng.choice(table.num_rows, n, replace=False))
    return table.take(idx)
  idx = rng.integers(0, table.num_rows, n)
  table = table.take(idx)
  return table.set_column(table.column_names.index(id_column), id_column,
                          pa.array(np.arange(n, dtype=np.int64)))


def _latent(rng, users, videos, s):
  k, share = s["latent_dim"], s["feature_signal"]
  taste_signal = sum(_embed(rng, users[f], k) for f in _USER_TASTE_FIELDS)
  taste = _mix(taste_signal, rng.normal(size=(users.num_rows, k)), share)
  degree = users["user_active_degree"].to_numpy(zero_copy_only=False).astype(str)
  activity = np.array([_ACTIVITY.get(d, 0.7) for d in degree])
  follows = np.log1p(np.maximum(users["follow_user_num"].to_numpy(zero_copy_only=False), 0))
  bias = _mix(np.log(activity) + 0.3 * _standardize(follows), rng.normal(size=users.num_rows),
              share)

  tags = pc.split_pattern(pc.fill_null(videos["tag"], ""), ",")
  lengths = pc.list_value_length(tags).to_numpy(zero_copy_only=False)
  flat = pc.list_flatten(tags).to_numpy(zero_copy_only=False)
  tag_ids = np.array([int(t) if t.strip().isdigit() else 0 for t in flat], np.int64)
  tag_embed = rng.normal(size=(int(tag_ids.max(initial=0)) + 1, k))
  owner = np.repeat(np.arange(videos.num_rows), lengths)
  topic_signal = np.zeros((videos.num_rows, k))
  np.add.at(topic_signal, owner, tag_embed[tag_ids])
  topic_signal /= np.maximum(lengths, 1)[:, None]
  topic = _mix(topic_signal + 0.5 * _embed(rng, videos["video_type"], k),
               rng.normal(size=(videos.num_rows, k)), share)
  duration = videos["video_duration"].to_numpy(zero_copy_only=False).astype(np.float64)
  missing = ~np.isfinite(duration) | (duration <= 0)
  duration[missing] = np.exp(rng.normal(np.log(20_000), 0.8, missing.sum()))
  vtype = videos["video_type"].to_numpy(zero_copy_only=False).astype(str)
  appeal_signal = (np.where(vtype == "AD", -1.5, 0.0) + np.where(vtype == "UNKNOWN", -0.5, 0.0)
                   + _embed(rng, videos["upload_type"], 1)[:, 0]
                   - 0.3 * _standardize(np.log(duration)))
  appeal = _mix(appeal_signal, rng.normal(size=videos.num_rows), share)
  return dict(taste=taste, bias=bias, activity=activity, topic=topic, appeal=appeal,
              duration_ms=duration)


# The model's functions below take `xp` (numpy, or jax.numpy inside the compiled step of the
# `latent` environment) so that the generator and the simulation share one definition.
def _logit_parts(latent, u, v, xp=np):
  k = latent["taste"].shape[-1]
  match = xp.einsum("...k,...k->...", latent["taste"][u], latent["topic"][v]) / np.sqrt(k)
  return (latent["appeal"][v] + _MODEL["w_match"] * match + _MODEL["w_bias"] *
          latent["bias"][u]), match


def _watch_ratio(latent, v, match, xp=np):
  return _MODEL["rewatch"] / (1 + xp.exp(-(0.8 * match + 0.5 * latent["appeal"][v])))


def _click_probability(latent, logit, xp=np):
  return 1 / (1 + xp.exp(-(logit + latent["click_offset"])))


def expected_outcomes(latent: dict, u, v, xp=np) -> dict:
  """Exact P(click) and E[play_time_ms] of pairs (dense user/video positions in latent.npz)."""
  logit, match = _logit_parts(latent, u, v, xp)
  p = _click_probability(latent, logit, xp)
  watch = latent["duration_ms"][v] * _watch_ratio(latent, v, match, xp) * np.exp(
      _MODEL["play_sigma"] ** 2 / 2)
  no_click = (1 - _MODEL["skip_zero"]) * _MODEL["skip_frac"]
  return {"is_click": p, "play_time_ms": watch * (p + (1 - p) * no_click)}


def sampled_outcomes(latent: dict, u, v, uniform, normal, xp=np) -> dict:
  """One draw of (is_click, play_time_ms) per pair, from the generator's distribution.

  Args:
    latent: the latent truth (dense positions).
    u, v: user and video positions.
    uniform: [..., 2] independent U[0, 1) (click, skip), normal: [...] N(0, 1) (watch noise).
  """
  logit, match = _logit_parts(latent, u, v, xp)
  click = uniform[..., 0] < _click_probability(latent, logit, xp)
  watch = latent["duration_ms"][v] * _watch_ratio(latent, v, match, xp) * xp.exp(
      _MODEL["play_sigma"] * normal)
  skipped = uniform[..., 1] < _MODEL["skip_zero"]
  play = xp.where(click, watch, xp.where(skipped, 0.0, _MODEL["skip_frac"] * watch))
  return {"is_click": click.astype(watch.dtype), "play_time_ms": xp.round(play)}


LATENT_COLUMNS = ("is_click", "play_time_ms")  # Log columns the latent model gives any pair.


def _interactions(rng, latent, n_users, n_videos, s):
  n_total = s["n_interactions"]
  n_random = int(round(n_total * s["random_fraction"]))
  weights = latent["activity"] * rng.lognormal(0.0, 1.0, n_users)
  per_user = 1 + rng.multinomial(n_total - n_random - n_users, weights / weights.sum())
  rand_weights = weights ** 0.3
  per_user_rand = rng.multinomial(n_random, rand_weights / rand_weights.sum())
  u_std = np.repeat(np.arange(n_users), per_user)
  cands = rng.integers(0, n_videos, (len(u_std), 3))
  score = np.stack([_logit_parts(latent, u_std, cands[:, j])[0] for j in range(3)], 1)
  v_std = cands[np.arange(len(u_std)), np.argmax(score + rng.gumbel(size=score.shape), 1)]
  u_rand = np.repeat(np.arange(n_users), per_user_rand)
  v_rand = rng.integers(0, n_videos, len(u_rand))
  return u_std, v_std, u_rand, v_rand


def _calibrate(logit, target):
  lo, hi = -10.0, 10.0
  for _ in range(60):
    mid = (lo + hi) / 2
    lo, hi = (mid, hi) if np.mean(1 / (1 + np.exp(-(logit + mid)))) < target else (lo, mid)
  return (lo + hi) / 2


def _outcomes(rng, latent, u, v):
  logit, match = _logit_parts(latent, u, v)
  click = rng.random(len(u)) < _click_probability(latent, logit)
  watch = latent["duration_ms"][v] * _watch_ratio(latent, v, match) * rng.lognormal(
      0.0, _MODEL["play_sigma"], len(u))
  skipped = rng.random(len(u)) < _MODEL["skip_zero"]
  play = np.where(click, watch, np.where(skipped, 0.0, _MODEL["skip_frac"] * watch))
  play = np.round(play).astype(np.int64)
  duration = np.round(latent["duration_ms"][v]).astype(np.int64)
  like = click & (rng.random(len(u)) < 1 / (1 + np.exp(-(-3.0 + latent["appeal"][v] + match))))
  def rare(rate):
    return (click & (rng.random(len(u)) < rate)).astype(np.int8)
  profile = rare(0.03)
  return {
      "is_click": click.astype(np.int8), "is_like": like.astype(np.int8),
      "is_follow": rare(0.005), "is_comment": rare(0.003), "is_forward": rare(0.002),
      "is_hate": (~click & (rng.random(len(u)) < 0.001)).astype(np.int8),
      "long_view": (play >= np.minimum(duration, 18_000)).astype(np.int8) * (play > 0),
      "play_time_ms": play, "duration_ms": duration,
      "profile_stay_time": profile * rng.integers(1, 60, len(u)),
      "comment_stay_time": np.zeros(len(u), np.int64), "is_profile_enter": profile,
  }


def _write_csv(table, folder, stem, rows_per_part):
  if table.num_rows <= rows_per_part:
    pa_csv.write_csv(table, folder / f"{stem}.csv")
    return
  for i, start in enumerate(range(0, table.num_rows, rows_per_part)):
    pa_csv.write_csv(table.slice(start, rows_per_part), folder / f"{stem}_part{i + 1}.csv")


def _statistics(rng, latent, video_ids):
  n = len(video_ids)
  appeal = latent["appeal"]
  show = np.round(np.exp(rng.normal(6.0, 1.5, n) + 0.4 * appeal)).astype(np.int64) + 1
  ctr = 1 / (1 + np.exp(-(-0.7 + appeal)))
  play = rng.binomial(show, ctr)
  ratio = _watch_ratio(latent, np.arange(n), np.zeros(n)) / _MODEL["rewatch"]
  complete = rng.binomial(play, np.clip(ratio * 0.6, 0, 1))
  like = rng.binomial(play, 1 / (1 + np.exp(-(-3.5 + appeal))))
  stats = {
      "video_id": video_ids,
      "show_cnt": show, "show_user_num": np.round(show * 0.93).astype(np.int64),
      "play_cnt": play, "play_user_num": np.round(play * 0.95).astype(np.int64),
      "play_duration": np.round(play * latent["duration_ms"] * ratio).astype(np.int64),
      "complete_play_cnt": complete,
      "valid_play_cnt": rng.binomial(play, 0.8),
      "long_time_play_cnt": rng.binomial(play, np.clip(ratio, 0, 1) * 0.5),
      "short_time_play_cnt": rng.binomial(play, 0.3),
      "play_progress": np.round(np.clip(ratio + rng.normal(0, 0.05, n), 0, 1.3), 4),
      "like_cnt": like, "like_user_num": like,
      "comment_cnt": rng.poisson(0.02 * play), "share_cnt": rng.poisson(0.005 * play),
      "follow_cnt": rng.poisson(0.004 * play), "follow_user_num": rng.poisson(0.004 * play),
      "collect_cnt": rng.poisson(0.003 * play), "report_cnt": rng.poisson(0.0005 * show),
      "reduce_similar_cnt": rng.poisson(0.001 * show),
  }
  table = pa.table(stats)
  # Blanks, as some real statistic rows have.
  for name in ("like_cnt", "share_cnt", "play_progress"):
    blank = rng.random(n) < 0.01
    col = table[name]
    table = table.set_column(table.column_names.index(name), name,
                             pc.if_else(pa.array(blank), pa.scalar(None, col.type), col))
  return table


def generate(s: dict, folder: pathlib.Path) -> None:
  """Writes the KuaiRand-format CSVs and latent.npz of spec `s` into `folder`."""
  rng = np.random.default_rng([s["seed"], GENERATOR_VERSION])
  users = _pick_rows(rng, _asset("user_features_pure.csv.gz"), s["n_users"], "user_id")
  videos = _pick_rows(rng, _asset("video_features_basic_pure.csv.gz"), s["n_videos"],
                      "video_id")
  latent = _latent(rng, users, videos, s)
  u_std, v_std, u_rand, v_rand = _interactions(rng, latent, users.num_rows, videos.num_rows, s)
  logit_all = np.concatenate([_logit_parts(latent, u_std, v_std)[0],
                              _logit_parts(latent, u_rand, v_rand)[0]])
  latent["click_offset"] = np.float64(_calibrate(logit_all, s["click_rate"]))
  user_ids = users["user_id"].to_numpy()
  video_ids = videos["video_id"].to_numpy()
  suffix = s["size"]
  pa_csv.write_csv(users, folder / f"user_features_{suffix}.csv")
  pa_csv.write_csv(videos, folder / f"video_features_basic_{suffix}.csv")
  _write_csv(_statistics(rng, latent, video_ids), folder,
             f"video_features_statistic_{suffix}", s["rows_per_part"])

  std_period = rng.random(len(u_std)) < _LOG_FILES[0][2]
  pieces = {"log_standard_4_08_to_4_21": (u_std[std_period], v_std[std_period], 0),
            "log_standard_4_22_to_5_08": (u_std[~std_period], v_std[~std_period], 0),
            "log_random_4_22_to_5_08": (u_rand, v_rand, 1)}
  for stem, (u, v, is_rand) in pieces.items():
    order = np.lexsort((rng.random(len(u)), u))
    u, v = u[order], v[order]
    outcome = _outcomes(rng, latent, u, v)
    first_day, n_days = _DAYS[stem]
    day = rng.integers(0, n_days, len(u))
    hourmin = rng.integers(0, 24, len(u)) * 100
    columns = {"user_id": user_ids[u], "video_id": video_ids[v],
               "date": _date(first_day, day), "hourmin": hourmin,
               "time_ms": 1649376000000 + (day * 86_400_000 + hourmin * 36_000).astype(np.int64),
               **outcome, "is_rand": np.full(len(u), is_rand, np.int8),
               "tab": rng.integers(0, 15, len(u))}
    table = pa.table(columns)
    dup = np.flatnonzero(rng.random(len(u)) < s["duplicate_rate"])
    table = pa.concat_tables([table, table.take(dup)])  # Exact duplicate rows, as real logs have.
    _write_csv(table, folder, f"{stem}_{suffix}", s["rows_per_part"])
  np.savez(folder / "latent.npz", user_ids=user_ids, video_ids=video_ids,
           **{k: np.asarray(v) for k, v in latent.items()})


def _date(first_day, offsets):
  base = np.datetime64(f"{str(first_day)[:4]}-{str(first_day)[4:6]}-{str(first_day)[6:]}")
  days = (base + offsets.astype("timedelta64[D]")).astype(str)
  return np.char.replace(days, "-", "").astype(np.int64)


def _timestamps(rng, n, first_day="2020-07-05", n_days=60):
  """KuaiRec's (time text, date int, timestamp float seconds) columns."""
  seconds = rng.integers(0, n_days * 86_400, n) + rng.random(n).round(3)
  base = np.datetime64(f"{first_day}T00:00:00")
  when = base + (seconds * 1000).astype("timedelta64[ms]")
  text = np.datetime_as_string(when, unit="ms").astype(str)
  date = np.char.replace(np.char.partition(text, "T")[:, 0], "-", "").astype(np.int64)
  epoch = (base - np.datetime64("1970-01-01T00:00:00")).astype("timedelta64[s]").astype(float)
  return np.char.replace(text, "T", " "), date, epoch + seconds - 8 * 3600


def _kuairec_matrix(rng, latent, u, v):
  """KuaiRec log columns of pairs (u, v): play_duration and watch_ratio from the latent model."""
  out = _outcomes(rng, latent, u, v)
  duration = np.maximum(out["duration_ms"], 1)
  time_text, date, timestamp = _timestamps(rng, len(u))
  return {"play_duration": out["play_time_ms"], "video_duration": duration, "time": time_text,
          "date": date, "timestamp": timestamp,
          "watch_ratio": np.round(out["play_time_ms"] / duration, 6)}


def generate_kuairec(s: dict, folder: pathlib.Path) -> None:
  """Writes a KuaiRec 2.0-format folder and latent.npz: the small matrix covers the first
  n_env_users x n_env_videos pairs (less `blocked_rate` of them); the big matrix holds
  n_pretrain production-ranked rows over all users and videos outside the small matrix."""
  rng = np.random.default_rng([s["seed"], GENERATOR_VERSION, 2])
  users = _pick_rows(rng, _asset("user_features_pure.csv.gz"), s["n_users"], "user_id")
  videos = _pick_rows(rng, _asset("video_features_basic_pure.csv.gz"), s["n_videos"],
                      "video_id")
  latent = _latent(rng, users, videos, s)
  n_eu, n_ev = s["n_env_users"], s["n_env_videos"]
  eu, ev = np.divmod(np.arange(n_eu * n_ev), n_ev)
  keep = rng.random(len(eu)) >= s["blocked_rate"]
  eu, ev = eu[keep], ev[keep]
  # Pretraining logs: each row the best of 3 random videos by logit + Gumbel noise (a production
  # ranker's exposure), pairs inside the small matrix redrawn.
  n_pre = s["n_pretrain"]
  weights = latent["activity"] * rng.lognormal(0.0, 1.0, s["n_users"])
  pu = rng.choice(s["n_users"], n_pre, p=weights / weights.sum())
  cands = rng.integers(0, s["n_videos"], (n_pre, 3))
  inside = (pu[:, None] < n_eu) & (cands < n_ev)
  cands = np.where(inside, n_ev + rng.integers(0, max(s["n_videos"] - n_ev, 1), cands.shape),
                   cands)
  score = np.stack([_logit_parts(latent, pu, cands[:, j])[0] for j in range(3)], 1)
  pv = cands[np.arange(n_pre), np.argmax(score + rng.gumbel(size=score.shape), 1)]
  logit_all = np.concatenate([_logit_parts(latent, eu, ev)[0], _logit_parts(latent, pu, pv)[0]])
  latent["click_offset"] = np.float64(_calibrate(logit_all, s["click_rate"]))
  user_ids = users["user_id"].to_numpy()
  video_ids = videos["video_id"].to_numpy()
  for name, (u, v) in (("small_matrix", (eu, ev)), ("big_matrix", (pu, pv))):
    order = np.lexsort((rng.random(len(u)), u))
    u, v = u[order], v[order]
    table = pa.table({"user_id": user_ids[u], "video_id": video_ids[v],
                      **_kuairec_matrix(rng, latent, u, v)})
    pa_csv.write_csv(table, folder / f"{name}.csv")
  pa_csv.write_csv(users, folder / "user_features.csv")
  daily = []
  for day in range(3):  # Statistics per date; attributes repeat on every row.
    stats = _statistics(rng, latent, video_ids)
    attrs = {"video_id": video_ids, "date": np.full(len(video_ids), 20200705 + day),
             "author_id": videos["author_id"], "video_type": videos["video_type"],
             "upload_dt": videos["upload_dt"], "upload_type": videos["upload_type"],
             "visible_status": videos["visible_status"],
             "video_duration": videos["video_duration"], "video_width": videos["server_width"],
             "video_height": videos["server_height"], "music_id": videos["music_id"],
             "video_tag_id": rng.integers(0, 40, len(video_ids)),
             "video_tag_name": np.full(len(video_ids), "美食,生活")}
    daily.append(pa.table({**attrs, **{k: stats[k] for k in stats.column_names
                                         if k != "video_id"}}))
  daily = pa.concat_tables(daily)
  daily = daily.take(pa.array(rng.permutation(daily.num_rows)))
  pa_csv.write_csv(daily, folder / "item_daily_features.csv")
  tags = pc.fill_null(videos["tag"], "").to_numpy(zero_copy_only=False).astype(str)
  feat = np.array([f"[{', '.join(t.split(','))}]" if t else "[]" for t in tags])
  pa_csv.write_csv(pa.table({"video_id": video_ids, "feat": feat}),
                   folder / "item_categories.csv")
  (folder / "kuairec_caption_category.csv").write_text(
      'video_id,manual_cover_text,caption\n0,"unterminated,\n')  # Never read (not valid CSV).
  np.savez(folder / "latent.npz", user_ids=user_ids, video_ids=video_ids,
           **{k: np.asarray(v) for k, v in latent.items()})


def load_latent(folder) -> dict:
  """The latent truth of a generated dataset (see `expected_outcomes`)."""
  with np.load(pathlib.Path(folder) / "latent.npz") as z:
    return {k: z[k] for k in z.files}
