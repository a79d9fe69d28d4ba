"""Same numbers across two versions of the code: a fixed set of small runs, then a comparison.

  python scripts/same_numbers.py run REPO OUT DATA   # every case into OUT/<case>/, REPO's code
  python scripts/same_numbers.py compare A B [KEYS]  # every output of A against B's; KEYS:
                                                     # config keys new in B, comma-separated

The cases: the eight modes in replay, latent and matrix, sweeps, both retrievals, expected
outcomes, the ID model classes (two-tower and Wide & Deep labels, a two-tower weight model),
one model class per arm given to both arms by `arms.<arm>.labels` (a version without those keys
runs them as label keys), the designs' variants (assignment per step, two updates and dropout, G on video
features, pooled co-diverted, cluster by a column, random and alternating switchbacks), a
frozen truth, a resumed run, merged array pieces and a tiny study. Only the command line
(scripts/run.py, merge.py, study.py) is used, so any two versions can be compared, e.g. a
`git worktree` of an earlier commit against this checkout, on the same data folder (run one
version first: it generates the data). The comparison is exact: every JSON value but timings,
paths and the data fingerprint (file mtimes), and every Parquet column, bit for bit.
GTESIM_CASES=REGEX runs only the cases whose name matches.
"""

import json
import os
import pathlib
import re
import subprocess
import sys
import time

import numpy as np
import pyarrow.parquet as pq

TINY = ["--config.data.synthetic.size=tiny", "--config.repetitions=3",
        "--config.checkpoint_every=20", "--config.pretrain.n_interactions=512",
        "--config.pretrain.max_epochs=3", "--config.pretrain.batch_size=128",
        "--config.sim.n_steps=40", "--config.sim.batch_size=8", "--config.sim.n_candidate=4",
        "--config.sim.validate_every=10", "--config.sim.eval_rows=256",
        "--config.estimator.batch_blocks=4", "--config.labels.click.mlp.hidden=(16,)",
        "--config.labels.play_time.mlp.hidden=(16,)"]
MODES = ("global", "pooling", "splitting", "snapshot", "weighting", "codiverted", "cluster",
         "switchback")
KUAIREC = ["--config.data.name=synthetic-kuairec", "--config.data.synthetic.kuairec_size=tiny",
           "--config.repetitions=2", "--config.checkpoint_every=20",
           "--config.pretrain.n_interactions=2000", "--config.pretrain.max_epochs=3",
           "--config.pretrain.batch_size=256", "--config.sim.n_steps=40",
           "--config.sim.batch_size=8", "--config.sim.n_candidate=4",
           "--config.sim.validate_every=10", "--config.sim.eval_rows=256",
           "--config.estimator.batch_blocks=4", "--config.data.user_p_val=0.2"]


def config_of(mode: str) -> str:
  """A mode's config file: its own (configs/global.py) or configs/ab.py:<design>."""
  own = pathlib.Path(__file__).resolve().parents[1] / "configs" / f"{mode}.py"
  return f"configs/{mode}.py" if own.exists() else f"configs/ab.py:{mode}"


def cases():
  """(name, kind, args): kind 'run' (configs/<mode>.py + args) or others."""
  out = []
  for env in ("replay", "latent"):
    for mode in MODES:
      out.append((f"{env}-{mode}", "run", [config_of(mode), *TINY,
                                           f"--config.sim.environment={env}"]))
  out += [
      ("replay-pooling-sweep", "run", ["configs/ab.py:pooling", *TINY,
                                       "--config.sweep.p_treatment=(0.2,0.5)",
                                       "--config.sweep.alpha_gap=(0.0,1.0)"]),
      ("replay-global-gaps", "run", ["configs/global.py", *TINY,
                                     "--config.sweep.alpha_gap=(0.0,0.5,1.0)"]),
      ("replay-pooling-popularity", "run", ["configs/ab.py:pooling", *TINY,
                                            "--config.sim.retrieval=popularity"]),
      ("latent-global-popularity", "run", ["configs/global.py", *TINY,
                                           "--config.sim.environment=latent",
                                           "--config.sim.retrieval=popularity"]),
      ("latent-pooling-expected", "run", ["configs/ab.py:pooling", *TINY,
                                          "--config.sim.environment=latent",
                                          "--config.sim.outcome=expected"]),
      ("replay-codiverted-popularity", "run", ["configs/ab.py:codiverted", *TINY,
                                               "--config.sim.retrieval=popularity"]),
      ("replay-codiverted-pooled", "run", ["configs/ab.py:codiverted", *TINY,
                                           "--config.experiment.codiverted.training=pooled",
                                           "--config.experiment.codiverted.p_items=0.3"]),
      ("latent-codiverted-popularity", "run", ["configs/ab.py:codiverted", *TINY,
                                               "--config.sim.environment=latent",
                                               "--config.sim.retrieval=popularity"]),
      ("replay-weighting-video", "run", ["configs/ab.py:weighting", *TINY,
                                         "--config.experiment.weighting.features=video",
                                         "--config.experiment.weighting.g_update=before",
                                         "--config.experiment.weighting.clip=3.0",
                                         "--config.sweep.p_treatment=(0.3,0.6)"]),
      ("replay-pooling-step", "run", ["configs/ab.py:pooling", *TINY,
                                      "--config.experiment.assignment=step",
                                      "--config.sim.updates_per_step=2",
                                      "--config.labels.click.dropout=0.2",
                                      "--config.sim.arm_blocks=3"]),
      ("replay-cluster-column", "run", ["configs/ab.py:cluster", *TINY,
                                        "--config.experiment.cluster.column="
                                        "user.user_active_degree",
                                        "--config.experiment.cluster.shuffle=0.2"]),
      ("replay-switchback-random", "run", ["configs/ab.py:switchback", *TINY,
                                           "--config.experiment.switchback.order=random",
                                           "--config.experiment.switchback.every=5",
                                           "--config.experiment.switchback.burn_in=1"]),
      ("replay-switchback-alternating", "run", ["configs/ab.py:switchback", *TINY,
                                                "--config.experiment.switchback.order=alternating",
                                                "--config.experiment.switchback.every=10",
                                                "--config.experiment.switchback.burn_in=0"]),
      ("replay-snapshot-frozen-global", "run", ["configs/global.py", *TINY,
                                                "--config.sim.train_models=False"]),
  ]
  def id_labels(cls, labels=("click", "play_time")):  # The ID classes' sparse updates.
    # wide_deep's deep part as TINY's MLPs (one `hidden` key before the config sections).
    return [f"--config.labels.{label}.{k}={v}" for label in labels
            for k, v in (("model", cls), ("two_tower.tower_hidden", "(8,)"),
                         ("two_tower.tower_dim", 4), ("two_tower.id_dim", 4),
                         ("wide_deep.hidden", "(16,)"))]
  for cls, mode, ids in (
      ("two_tower", "pooling", id_labels("two_tower")),
      ("wide_deep", "global", id_labels("wide_deep")),
      ("two_tower", "weighting", id_labels("two_tower", ("click",)) + [
          "--config.experiment.weighting.g.model=two_tower",
          "--config.experiment.weighting.g.two_tower.tower_hidden=(8,)"])):
    out.append((f"replay-{mode}-{cls}", "run", [config_of(mode), *TINY, *ids]))
  # One case per model class given to both arms through the per-arm keys (an older version,
  # without `arms`, runs it as the label-level config: without_arms).
  def both_arms(cls, labels):
    return [f"--config.arms.{arm}.labels.{a[len('--config.labels.'):]}"
            for arm in ("treatment", "control") for a in id_labels(cls, labels)]
  for cls, mode in (("two_tower", "global"), ("wide_deep", "pooling")):
    out.append((f"replay-{mode}-arms-{cls}", "run",
                [config_of(mode), *TINY, *both_arms(cls, ("play_time",))]))
  out.append(("replay-splitting-arms-mlp", "run", [
      "configs/ab.py:splitting", *TINY, *[f"--config.arms.{arm}.labels.click.mlp.hidden=(8,)"
                                       for arm in ("treatment", "control")]]))
  for mode in MODES:
    out.append((f"matrix-{mode}", "run", [f"{mode}.py", *KUAIREC]))
  out.append(("matrix-pooling-popularity", "run", ["pooling.py", *KUAIREC,
                                                   "--config.sim.retrieval=popularity"]))
  out.append(("resume-pooling", "resume", ["configs/ab.py:pooling", *TINY]))
  out.append(("merge-weighting", "merge", ["configs/ab.py:weighting", *TINY]))
  out.append(("study-tiny", "study", ["configs/study.py", *TINY, "--config.repetitions=4",
                                      "--config.study.name=tiny",
                                      "--config.study.p_values=(0.2,0.5)",
                                      "--config.study.alpha_gaps=(0.0,0.5,1.0)"]))
  return out


def without_arms(args):
  """The per-arm overrides of a case as label-level overrides, for a version without `arms`
  (the cases give both arms the same values)."""
  out = []
  for a in args:
    if a.startswith("--config.arms.control."):
      continue
    out.append(a.replace("--config.arms.treatment.labels.", "--config.labels."))
  return last_override(out)


# Keys that moved into sections (issue 35): new dotted key -> the older flat key.
SECTION_KEYS = {
    "mlp.hidden": "hidden", "wide_deep.hidden": "hidden",
    "two_tower.tower_hidden": "tower_hidden", "two_tower.tower_dim": "tower_dim",
    "two_tower.id_dim": "id_dim", "wide_deep.cross_buckets": "cross_buckets",
    "ids.budget": "id_budget", "ids.buckets": "id_buckets",
    "ids.learning_rate": "id_learning_rate", "ids.initial_accumulator": "id_initial_accumulator",
    "ids.eps": "id_eps", "ids.dropout": "id_dropout",
    "experiment.weighting.clip": "experiment.weight_clip",
    "experiment.weighting.g_update": "experiment.g_update",
    "experiment.weighting.features": "experiment.weight_features",
    "experiment.weighting.g.": "experiment.weight_model.",
    "experiment.codiverted.p_items": "experiment.p_items",
    "experiment.codiverted.training": "experiment.codiverted_training",
    "experiment.cluster.n": "experiment.n_clusters",
    "experiment.cluster.column": "experiment.cluster_column",
    "experiment.cluster.iterations": "experiment.cluster_iterations",
    "experiment.cluster.shuffle": "experiment.cluster_shuffle",
    "experiment.switchback.every": "experiment.switch_every",
    "experiment.switchback.order": "experiment.switch_order",
    "experiment.switchback.burn_in": "experiment.switch_burn_in",
}


def flat_keys(args):
  """A case's arguments for a version before the config sections: flat keys, and
  configs/<design>.py for configs/ab.py:<design>."""
  out = []
  for a in args:
    a = re.sub(r"^configs/ab\.py:(\w+)$", r"configs/\1.py", a)
    if a.startswith("--config."):
      key, eq, value = a[len("--config."):].partition("=")
      for new, old in SECTION_KEYS.items():
        if new.endswith("."):
          key = key.replace(new, old)
        elif key == new or key.endswith("." + new):
          key = key[:len(key) - len(new)] + old
      a = f"--config.{key}{eq}{value}"
    out.append(a)
  return last_override(out)


def last_override(args):
  """Each --config.KEY once, its last value (ml_collections joins a tuple given twice)."""
  keys = [a.partition("=")[0] if a.startswith("--config.") else None for a in args]
  return [a for i, (a, k) in enumerate(zip(args, keys)) if k is None or k not in keys[i + 1:]]


def sh(repo, args, log):
  env = dict(os.environ, PYTHONPATH=str(repo), JAX_PLATFORMS="cpu")
  with open(log, "a") as f:
    f.write("$ " + " ".join(args) + "\n")
    f.flush()
    r = subprocess.run([sys.executable, *args], cwd=repo, env=env, stdout=f, stderr=f)
  if r.returncode:
    raise SystemExit(f"failed ({r.returncode}): {' '.join(args)}; see {log}")


def run(repo, out, data):
  repo, out, data = (pathlib.Path(p).resolve() for p in (repo, out, data))
  out.mkdir(parents=True, exist_ok=True)
  # configs/kuairec.py is global mode; the matrix cases use a config per mode written beside
  # the outputs (the defaults' module moved with the package layout of issue 17).
  mk = out / "matrix_configs"
  mk.mkdir(exist_ok=True)
  old_layout = (repo / "gtesim" / "default_config.py").exists()
  defaults = repo / "gtesim" / "config" / "defaults.py"
  has_arms = defaults.exists() and "def arm_sections" in defaults.read_text()
  has_sections = (repo / "configs" / "ab.py").exists()
  for mode in MODES:
    (mk / f"{mode}.py").write_text(
        ("from gtesim import default_config as d\n" if old_layout else
         "from gtesim.config import defaults as d\n") +
        f"def get_config():\n  c = d.use_kuairec(d.get_config())\n  c.mode = {mode!r}\n"
        "  return c\n")
  log = out / "commands.log"
  only = re.compile(os.environ.get("GTESIM_CASES", ".*"))  # A subset of the cases, by name.
  for name, kind, args in cases():
    if not only.fullmatch(name):
      continue
    target = out / name
    if (target / "done").exists():
      continue
    tic = time.time()
    args = list(args)
    if not has_arms:
      args = without_arms(args)
    if not has_sections:
      args = flat_keys(args)
    if name.startswith("matrix-"):
      args[0] = str(mk / args[0])
      root = data / "kuairec"
    else:
      root = data / "synthetic"
    common = [f"--config.data.root={root}"]
    if kind == "run":
      sh(repo, ["scripts/run.py", "--config", *args[:1], *args[1:], *common,
                "--workdir", str(target), "--overwrite"], log)
    elif kind == "resume":
      sh(repo, ["scripts/run.py", "--config", *args[:1], *args[1:], *common,
                "--config.sim.n_steps=20", "--workdir", str(target), "--overwrite"], log)
      sh(repo, ["scripts/run.py", "--config", *args[:1], *args[1:], *common,
                "--workdir", str(target), "--resume"], log)
    elif kind == "merge":
      for off, n in ((0, 1), (1, 2)):
        sh(repo, ["scripts/run.py", "--config", *args[:1], *args[1:], *common,
                  f"--config.repetitions={n}", f"--config.rep_offset={off}",
                  "--workdir", str(target / f"rep{off}"), "--overwrite"], log)
      sh(repo, ["scripts/merge.py", str(target / "rep0"), str(target / "rep1"), "--out",
                str(target / "merged")], log)
    elif kind == "study":
      sh(repo, ["scripts/study.py", "--config", *args[:1], *args[1:], *common,
                "--out", str(target)], log)
    (target / "done").write_text(f"{time.time() - tic:.1f}\n")
    print(f"{name}: {time.time() - tic:.1f} s", flush=True)


SKIP = {"timing", "wall_s", "cost", "command", "workdir", "folder", "this_invocation_s",
        "fingerprint", "package_commit"}


def _json_diff(a, b, path, out, new_keys=()):
  if isinstance(a, dict) and isinstance(b, dict):
    for k in sorted(set(a) | set(b)):
      if k in SKIP or (k in new_keys and k not in a):
        continue
      if k not in a or k not in b:
        out.append(f"{path}.{k}: only in {'B' if k not in a else 'A'}")
        continue
      _json_diff(a[k], b[k], f"{path}.{k}", out, new_keys)
  elif isinstance(a, list) and isinstance(b, list):
    if len(a) != len(b):
      out.append(f"{path}: length {len(a)} vs {len(b)}")
      return
    for i, (x, y) in enumerate(zip(a, b)):
      _json_diff(x, y, f"{path}[{i}]", out)
  elif a != b and not (isinstance(a, str) and isinstance(b, str) and
                       ("/" in a and a.split("/")[-1] == b.split("/")[-1])):
    out.append(f"{path}: {a!r} vs {b!r}")


def _fold_model(section: dict) -> dict:
  """A model section of the flat layout in the sections' layout."""
  out = {k: section[k] for k in ("model", "dropout", "learning_rate", "weight_decay")
         if k in section}
  out.update({k: v for k, v in section.items() if k not in SECTION_KEYS.values()
              and k not in out})  # A label's own keys (column, type, alphas, ...).
  for new, old in SECTION_KEYS.items():
    if "." in new and not new.startswith("experiment.") and old in section:
      sub, key = new.split(".")
      out.setdefault(sub, {})[key] = section[old]
  return out


def fold_config(config: dict) -> dict:
  """A config.json of a version before the config sections, in the sections' layout (the
  keys that moved compare with their new names)."""
  if "weight_model" not in config.get("experiment", {}):
    return config
  config = json.loads(json.dumps(config))
  config["labels"] = {n: _fold_model(l) for n, l in config["labels"].items()}
  exp = config["experiment"]
  exp["weight_model"] = _fold_model(exp["weight_model"])
  for new, old in SECTION_KEYS.items():
    if new.startswith("experiment.") and not new.endswith("."):
      key = old.split(".", 1)[1]
      if key in exp:
        sub, name = new.split(".")[1:]
        exp.setdefault(sub, {})[name] = exp.pop(key)
  exp.setdefault("weighting", {})["g"] = exp.pop("weight_model")
  return config


def used_only(config: dict) -> dict:
  """A config.json without the subsections of model classes a section does not use (the
  flat layout shared `hidden` between mlp and wide_deep; the sections keep each their own)."""
  config = json.loads(json.dumps(config))
  sections = list(config.get("labels", {}).values())
  sections += [config.get("experiment", {}).get("weighting", {}).get("g", {})]
  for arm in config.get("arms", {}).values():
    sections += list(arm.get("labels", {}).values())
  for section in sections:
    model = section.get("model")
    for cls in ("mlp", "two_tower", "wide_deep"):
      if cls != model:
        section.pop(cls, None)
  return config


def arms_into_labels(config: dict) -> dict:
  """A config.json whose arms override a label alike, with the overrides in the label (what a
  version without `arms` runs: without_arms)."""
  config = json.loads(json.dumps(config))
  arms = config.get("arms", {})
  t, c = arms.get("treatment", {}).get("labels", {}), arms.get("control", {}).get("labels", {})

  def put(section, over):
    for k, v in over.items():
      if isinstance(v, dict):
        put(section.setdefault(k, {}), v)
      elif v is not None:
        section[k] = v
  for name, over in t.items():
    if over == c.get(name) and name in config["labels"]:
      put(config["labels"][name], over)
  return config


def compare(a, b, new_keys=""):
  """Every output of A against B's. `new_keys`: comma-separated config keys that B's version
  added (its config.json holds them, A's cannot). TensorBoard event files are skipped: named
  by wall-clock time, a view of the Parquet tables, which are compared."""
  new_keys = tuple(k for k in new_keys.split(",") if k)
  a, b = pathlib.Path(a), pathlib.Path(b)
  problems, files = [], 0
  for fa in sorted(a.rglob("*")):
    rel = fa.relative_to(a)
    if (fa.is_dir() or "checkpoint" in str(rel) or rel.parts[0] == "matrix_configs" or
        "tensorboard" in rel.parts):
      continue
    fb = b / rel
    if rel.name in ("run.log", "commands.log", "done", "study.log", ".lock") or \
        rel.suffix in (".png", ".svg", ".md"):
      continue
    if not fb.exists():
      problems.append(f"{rel}: missing in B")
      continue
    files += 1
    if rel.suffix == ".json":
      diffs = []
      ja, jb = json.loads(fa.read_text()), json.loads(fb.read_text())
      if rel.name == "config.json":
        # Both sides: a no-op on a version without `arms`.
        ja, jb = (used_only(arms_into_labels(fold_config(ja))),
                  used_only(arms_into_labels(jb)))
      _json_diff(ja, jb, str(rel), diffs, new_keys)
      problems += diffs[:20]
    elif rel.suffix == ".parquet":
      ta, tb = pq.read_table(fa).to_pydict(), pq.read_table(fb).to_pydict()
      if list(ta) != list(tb):
        problems.append(f"{rel}: columns {list(ta)} vs {list(tb)}")
        continue
      for k in ta:
        x, y = np.asarray(ta[k]), np.asarray(tb[k])
        if x.dtype.kind == "f" or y.dtype.kind == "f":
          same = x.shape == y.shape and np.array_equal(x.astype(np.float64), y.astype(np.float64),
                                                       equal_nan=True)
        else:
          same = x.shape == y.shape and (x == y).all()
        if not same:
          problems.append(f"{rel}: column {k} differs")
    else:
      if fa.read_bytes() != fb.read_bytes():
        problems.append(f"{rel}: bytes differ")
  for fb in sorted(b.rglob("*")):
    rel = fb.relative_to(b)
    if fb.is_file() and rel.suffix in (".json", ".parquet") and "checkpoint" not in str(rel) \
        and not (a / rel).exists():
      problems.append(f"{rel}: missing in A")
  print(f"compared {files} files: {len(problems)} differences")
  for p in problems[:200]:
    print("  " + p)
  return not problems


if __name__ == "__main__":
  if sys.argv[1] == "run":
    run(*sys.argv[2:5])
  else:
    sys.exit(0 if compare(*sys.argv[2:5]) else 1)
