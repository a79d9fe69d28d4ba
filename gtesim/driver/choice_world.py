"""Runs of the choice world (environments/choice.py) from a config: B runs of one design in
one compiled call, the all-one-ranker worlds of the truth, and their per-run take-ups.

Randomness: the world comes from `choice.world_seed` (one world shared by every run and design,
as in the source; `choice.world_per_run` draws run b's own world from (world_seed, b)). Run b's
noise and new-item order come from (replication.seed, b), so the A/B run b and the global
worlds' run b see the same ones (the paired truth); the independent truth's worlds of each
ranker draw theirs from (replication.seed, b, the ranker), as the source's separate runs do.
Each design's assignment comes from (replication.seed, b, 1). A run is a function of its
seeds alone: run b of B equals a run of B = 1 with rep_offset b, bit for bit (runs are always
computed in whole chunks of replication.chunk, so the compiled shapes never change; item-CF's
float32 sums could otherwise round differently under another shape, see docs/replication.md).
"""

import dataclasses
import functools
import hashlib
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec

from gtesim.data import choice_world as world_lib
from gtesim.designs import choice_world as designs
from gtesim.driver import parallel
from gtesim.environments import choice
from gtesim.errors import GtesimError, require
from gtesim.models import counting

ALGOS = ("item_cf", "user_cf", "random", "oracle")


def check_config(config) -> None:
  """Refuses bad values of the `choice` and `replication` sections, naming the key."""
  c, r = config.choice, config.replication
  for key in ("n_users", "n_items", "k", "n_periods", "n_new", "kept", "fallback_rows",
              "segments"):
    require(int(c[key]) >= 1, f"choice.{key}", f"{c[key]}: must be a positive integer.")
  require(0 <= c.warmup < c.n_periods, "choice.warmup",
          f"{c.warmup}: must be in [0, choice.n_periods = {c.n_periods}).")
  require(c.kept <= c.n_items, "choice.kept", f"{c.kept}: must be at most choice.n_items.")
  require(c.kept_wide == 0 or c.kept < c.kept_wide <= c.n_items, "choice.kept_wide",
          f"{c.kept_wide}: must be 0 (none) or in (choice.kept = {c.kept}, choice.n_items].")
  require(c.kept_wide == 0 or c.wide_rows >= 1, "choice.wide_rows",
          f"{c.wide_rows}: must be a positive integer.")
  require(c.gamma_pref > 0, "choice.gamma_pref", f"{c.gamma_pref}: must be positive.")
  require(c.gamma_item > 0, "choice.gamma_item", f"{c.gamma_item}: must be positive.")
  require(0 <= c.reserve_percentile <= 100, "choice.reserve_percentile",
          f"{c.reserve_percentile}: must be in [0, 100].")
  require(c.discount >= 0, "choice.discount", f"{c.discount}: must be >= 0.")
  for key in ("algo1", "algo2"):
    counting.RANKERS.get(r[key])
  designs.DESIGNS.get(r.design)
  require(0 < r.p < 1, "replication.p", f"{r.p}: must be in (0, 1).")
  require(0 <= r.shuffle <= 1, "replication.shuffle", f"{r.shuffle}: must be in [0, 1].")
  require(r.shuffle_reading in designs.SHUFFLE_READINGS, "replication.shuffle_reading",
          f"'{r.shuffle_reading}': use one of {', '.join(designs.SHUFFLE_READINGS)}.")
  require(r.runs >= 2, "replication.runs", f"{r.runs}: needs at least 2 runs.")
  require(r.chunk >= 1, "replication.chunk", f"{r.chunk}: must be a positive integer.")
  require(r.cpu_devices >= 0, "replication.cpu_devices",
          f"{r.cpu_devices}: must be 0 (one per core) or a positive integer.")
  require(2 <= r.cluster_k_min <= r.cluster_k_max, "replication.cluster_k_min",
          f"[{r.cluster_k_min}, {r.cluster_k_max}]: needs 2 <= k_min <= k_max.")


def make_world(config, index: int | None = None) -> world_lib.ChoiceWorld:
  """The configured world (index: run `index`'s own, with choice.world_per_run)."""
  c = config.choice
  seed = [c.world_seed] if index is None else [c.world_seed, index]
  return world_lib.generate(np.random.default_rng(seed), c.n_users, c.n_items, c.k,
                            c.gamma_pref, c.gamma_item, c.sigma, c.reserve_percentile,
                            c.user_types, c.item_types)


def world_digest(world: world_lib.ChoiceWorld) -> str:
  """A short hash of a world's utilities and reserves (results name the world they ran in)."""
  h = hashlib.sha256(np.ascontiguousarray(world.utility).tobytes())
  h.update(np.ascontiguousarray(world.reserve).tobytes())
  return h.hexdigest()[:16]


def _seeds(seed: int, run: int, *purpose) -> np.ndarray:
  words = [seed, run] + [int.from_bytes(p.encode()[:8].ljust(8, b"\0"), "little")
                         for p in purpose]
  return np.random.default_rng(words).integers(0, 2 ** 32, 4, dtype=np.uint32)


def assignment_rng(seed: int, run: int) -> np.random.Generator:
  """Run `run`'s generator of its design's draws."""
  return np.random.default_rng([seed, run, 1])


@dataclasses.dataclass(frozen=True)
class Runs:
  """Per-run outputs of B runs (numpy)."""
  take: np.ndarray  # [B, T, A] take-ups per arm and period.
  n: np.ndarray  # [B, T, A] users per arm and period.
  consumed: np.ndarray  # [B, T, A]
  from_list: np.ndarray  # [B, T, A]
  user_take: np.ndarray  # [B, U, A] counted take-ups per user.
  user_n: np.ndarray  # [B, U, A] counted periods per user.
  fallback: np.ndarray  # [B] user-periods whose kept prefix did not suffice (summed).
  whole: np.ndarray  # [B] user-periods whose whole list decided their choice (summed).
  seconds: float  # Wall time of the compiled call (compilation included).

  def arm_take_up(self, warmup: int) -> np.ndarray:
    """[B, A] each arm's take-up: the mean over counted periods (from `warmup`) that had users
    on the arm of the share of them with take-up 1 (NaN: the arm never had a user)."""
    n = self.n[:, warmup:]
    share = np.divide(self.take[:, warmup:], n, out=np.zeros(n.shape), where=n > 0)
    periods = (n > 0).sum(1)
    return np.where(periods > 0, share.sum(1) / np.maximum(periods, 1), np.nan)


def run_spec(config, rankers: tuple, design: designs.ChoiceDesign) -> choice.RunSpec:
  c = config.choice
  return choice.RunSpec(tuple(counting.RANKERS.get(a) for a in rankers), c.n_periods,
                        c.warmup, c.n_new, c.kept, c.fallback_rows, c.discount,
                        training=design.training, item_arms=design.item_arms,
                        segments=c.segments, kept_wide=c.kept_wide, wide_rows=c.wide_rows)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _simulate(spec: choice.RunSpec, chunk: int, per_run_world: bool, mesh, world, inputs):
  """Every chunk of `chunk` runs: each device of the mesh takes a contiguous share of the
  chunks and computes them one after the other (lax.map), with the same per-chunk program on
  every device. The world is shared by every run, or has a leading run axis (per_run_world)."""
  sharded = PartitionSpec(parallel.AXIS)

  def local(world, inputs):
    n_chunks = inputs.arm.shape[0] // chunk
    split = lambda a: a.reshape((n_chunks, chunk) + a.shape[1:])

    def one_chunk(args):
      w, r = args
      if not per_run_world:
        w = jax.tree.map(lambda a: jnp.broadcast_to(a, (chunk,) + a.shape), world)
      states, out = choice.simulate_chunk(spec, w, r)
      return out, states.user_take, states.user_n

    w = jax.tree.map(split, world) if per_run_world else jnp.zeros(n_chunks)
    return jax.lax.map(one_chunk, (w, jax.tree.map(split, inputs)))

  return jax.shard_map(local, mesh=mesh,
                       in_specs=(sharded if per_run_world else PartitionSpec(), sharded),
                       out_specs=sharded, check_vma=False)(world, inputs)  # The state a
  # chunk starts from is a constant, the same on every device.


def _chunk_mesh(n_chunks: int) -> tuple:
  """(A mesh over the devices, the chunks to compute): more than one chunk is padded to a
  whole number per device (the padding runs beside the real chunks: no longer wall time)."""
  n_dev = jax.device_count() if n_chunks > 1 else 1
  mesh = jax.make_mesh((n_dev,), (parallel.AXIS,), devices=jax.devices()[:n_dev],
                       axis_types=(jax.sharding.AxisType.Auto,))
  return mesh, -(-n_chunks // n_dev) * n_dev


def simulate(config, rankers: tuple, design: designs.ChoiceDesign, draws: list, seeds,
             worlds) -> Runs:
  """B runs (one per draw and seed row) in one compiled call, `replication.chunk` runs at a
  time. `worlds`: one ChoiceWorld for every run, or a list of one per run."""
  spec = run_spec(config, rankers, design)
  n = len(draws)
  chunk = config.replication.chunk  # Always whole chunks: one compiled shape whatever B.
  mesh, n_chunks = _chunk_mesh(-(-n // chunk))
  pad = n_chunks * chunk - n
  take = lambda a: np.concatenate([a, np.repeat(a[-1:], pad, 0)]) if pad else a
  inputs = choice.RunInputs(jnp.asarray(take(np.stack([d.arm for d in draws]))),
                            jnp.asarray(take(np.stack([d.item_arm for d in draws]))),
                            jnp.asarray(take(np.asarray(seeds, np.uint32))))
  per_run = isinstance(worlds, list)
  if per_run:
    world = choice.World(jnp.asarray(take(np.stack([w.utility for w in worlds])), jnp.float32),
                         jnp.asarray(take(np.stack([w.reserve for w in worlds])), jnp.float32))
  else:
    world = choice.World(jnp.asarray(worlds.utility, jnp.float32),
                         jnp.asarray(worlds.reserve, jnp.float32))
  start = time.time()
  out, user_take, user_n = jax.block_until_ready(
      _simulate(spec, chunk, per_run, mesh, world, inputs))
  seconds = time.time() - start
  # [n_chunks, T, chunk, ...] -> [B, T, ...]
  runs_first = lambda a: np.moveaxis(np.asarray(a), 2, 1).reshape((-1,) + a.shape[1:2] +
                                                                   a.shape[3:])[:n]
  overflow = int(np.asarray(out.overflow).max())
  if overflow:
    c = config.choice
    raise GtesimError(
        f"in some period, {overflow} users of a chunk beyond the rows it can retry needed "
        f"more than the kept prefix of choice.kept = {c.kept} items (a longer prefix of "
        f"choice.kept_wide = {c.kept_wide} for up to choice.wide_rows = {c.wide_rows} users, "
        f"their whole list for up to choice.fallback_rows = {c.fallback_rows}); raise "
        "choice.wide_rows, choice.fallback_rows or choice.kept. No result is written: those "
        "users' choices would be wrong.")
  flat = lambda a: np.asarray(a).reshape((-1,) + a.shape[2:])[:n]
  return Runs(runs_first(out.take), runs_first(out.n), runs_first(out.consumed),
              runs_first(out.from_list), flat(user_take), flat(user_n),
              runs_first(out.fallback).sum(1), runs_first(out.whole).sum(1), seconds)


def run_worlds(config, index_offset: int = 0):
  """The world of every run (one shared, or a list with choice.world_per_run)."""
  if config.choice.world_per_run:
    return [make_world(config, index_offset + b) for b in range(config.replication.runs)]
  return make_world(config)


def ab_runs(config, worlds, clusters) -> tuple:
  """(Runs of the configured design, each run's Draw)."""
  r, c = config.replication, config.choice
  design = designs.make(r.design, r.shuffle, r.shuffle_reading)
  first = r.rep_offset
  draws = [design.draw(assignment_rng(r.seed, first + b), r.p, c.n_periods, c.n_items,
                       clusters[b]) for b in range(r.runs)]
  seeds = [_seeds(r.seed, first + b, "noise") for b in range(r.runs)]
  return simulate(config, (r.algo1, r.algo2), design, draws, seeds, worlds), draws


def global_runs(config, algo: str, worlds, paired: bool) -> Runs:
  """Every user on `algo` in every period: paired (the A/B runs' seeds) or independent
  (seeds of their own per ranker)."""
  r, c = config.replication, config.choice
  design = designs.DESIGNS.get("naive")
  first = r.rep_offset
  draws = [designs.Draw(np.zeros((c.n_periods, c.n_users), np.int32),
                        np.zeros(c.n_items, np.int32))] * r.runs
  seeds = [_seeds(r.seed, first + b, "noise") if paired else
           _seeds(r.seed, first + b, "ref", algo) for b in range(r.runs)]
  return simulate(config, (algo,), design, draws, seeds, worlds)


def clusters_of(config, worlds) -> list:
  """Each run's users' taste clusters (one fit per world; one cluster of every user when the
  design does not cluster), refused when the design's p leaves an arm empty."""
  r = config.replication
  design = designs.make(r.design, r.shuffle, r.shuffle_reading)
  fit = lambda w: (designs.taste_clusters(w.taste, r.cluster_k_min, r.cluster_k_max,
                                          config.choice.world_seed)
                   if design.clusters_users else designs.all_users(config.choice.n_users))
  per_world = [fit(w) for w in worlds] if isinstance(worlds, list) else [fit(worlds)] * r.runs
  for clusters in per_world[:1] if not isinstance(worlds, list) else per_world:
    design.check(clusters, r.p)
  return per_world


def global_take_ups(config, algo: str, paired: bool, worlds=None) -> tuple:
  """([B] take-ups of the all-`algo` world's runs, seconds): paired runs share the A/B runs'
  seeds, independent ones have their own."""
  worlds = run_worlds(config, config.replication.rep_offset) if worlds is None else worlds
  runs = global_runs(config, algo, worlds, paired)
  return runs.arm_take_up(config.choice.warmup)[:, 0], runs.seconds


def replicate(config, log=print, take_ups=None) -> dict:
  """One configuration of the choice world: the design's B runs and both truths of
  (algo1, algo2), summarised (stats/replication.py). Returns the result (JSON-able).

  take_ups: (algo, paired) -> ([B] take-ups, seconds) of the all-one-ranker worlds with this
  config's runs (a study computes each once); default global_take_ups.
  """
  from gtesim.stats import replication as stats  # pylint: disable=import-outside-toplevel
  check_config(config)
  r, c = config.replication, config.choice
  worlds = run_worlds(config, r.rep_offset)
  clusters = clusters_of(config, worlds)
  ab, draws = ab_runs(config, worlds, clusters)
  realised = np.array([d.arm[c.warmup:].mean() for d in draws])
  log(f"[replication] {r.design} {r.algo1} vs {r.algo2}, p = {r.p}: {r.runs} runs in "
      f"{ab.seconds:.1f} s ({ab.seconds / r.runs:.3f} s per run, compilation included)")
  take_ups = take_ups or (lambda algo, paired: global_take_ups(config, algo, paired, worlds))
  g = {(algo, paired): take_ups(algo, paired) for algo in (r.algo1, r.algo2)
       for paired in (True, False)}
  take = {k: v[0] for k, v in g.items()}
  truth = stats.truths(take[r.algo1, True], take[r.algo2, True], take[r.algo1, False],
                       take[r.algo2, False])
  arm = ab.arm_take_up(c.warmup)
  estimates = arm[:, 0] - arm[:, 1]
  design = designs.make(r.design, r.shuffle, r.shuffle_reading)
  ses = {m: stats.SE_METHODS[m](ab, draws, c.warmup) for m in design.se_methods}
  paired_by_run = take[r.algo1, True] - take[r.algo2, True]
  out = stats.summary(estimates, ses, truth, paired_by_run)
  return {
      "gamma_pref": c.gamma_pref, "algo1": r.algo1, "algo2": r.algo2, "design": r.design,
      "p": r.p, "shuffle": r.shuffle, "shuffle_reading": r.shuffle_reading,
      "realised_p": float(realised.mean()),
      "realised_p_sd": float(realised.std()), **truth, **out,
      "take_up_arm1": float(np.nanmean(arm[:, 0])), "take_up_arm2": float(np.nanmean(arm[:, 1])),
      "consumed_share": float(ab.consumed[:, c.warmup:].sum() / ab.n[:, c.warmup:].sum()),
      "from_list_share": float(ab.from_list[:, c.warmup:].sum() / ab.n[:, c.warmup:].sum()),
      "fallback_users_per_run": float(ab.fallback.mean()),
      "whole_list_users_per_run": float(ab.whole.mean()),
      "clusters_k": clusters[0].k if design.clusters_users else None,
      "world": world_digest(worlds if not isinstance(worlds, list) else worlds[0]),
      "seconds": {"ab": ab.seconds, **{f"global_{a}_{'paired' if p else 'independent'}":
                                       v[1] for (a, p), v in g.items()}},
      "per_run": {"estimate": estimates.tolist(), "truth_paired": paired_by_run.tolist()},
  }
