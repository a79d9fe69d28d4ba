"""The Brennan–Holtz choice world (../shared/replication/brennan-holtz.md; docs/replication.md):
one design's B runs of item-CF vs user-CF and both truths.

Run:
  python scripts/replicate.py --config configs/replication.py
  python scripts/replicate.py --config configs/replication.py --config.replication.design=cluster

The world is the page's: K = 10, 100 users, 1,000 items, 100 periods (10 of warm-up), 10 new
items a period, gamma_pref = 10, utilities Beta(mean <taste, char>, sd 1e-5), median reserve.
"""

import ml_collections


def get_config():
  config = ml_collections.ConfigDict()
  c = config.choice = ml_collections.ConfigDict()
  c.n_users = 100
  c.n_items = 1000
  c.k = 10  # Latent dimensions.
  c.user_types = ml_collections.config_dict.placeholder(int)  # Corners users concentrate on
  # (None: all k, as the source's cluster_size = 10 of K = 10).
  c.item_types = 4  # Corners items concentrate on.
  c.gamma_pref = 10.0  # Dirichlet weight of a user's corner (1 elsewhere).
  c.gamma_item = 1.0  # An item's corner weight is 0.01 gamma_item (0.01 elsewhere).
  c.sigma = 1e-5  # Standard deviation of a utility around its mean <taste, char>.
  c.reserve_percentile = 50.0  # A user's reserve utility: this percentile of its utilities.
  c.n_periods = 100
  c.warmup = 10  # Periods without recommendations (not counted).
  c.n_new = 10  # Items released per period, in id order.
  c.discount = 0.8  # Position j's utility is multiplied by (1 + j)^-discount.
  c.world_seed = 0  # The world's seed: one world for every run and design.
  c.world_per_run = False  # True: run b draws its own world from (world_seed, b).
  c.kept = 8  # Each ranked list's kept prefix (a top-k). The users whose choice it could
  # have missed (environments.choice.prefix_is_exact: about 7% at gamma_pref = 10) get a
  # prefix of kept_wide items, and where that could miss too (about 0.5%), their whole list.
  c.kept_wide = 32
  c.wide_rows = 2048  # Users per chunk and period who can get the longer prefix.
  c.fallback_rows = 1024  # Users per chunk and period whose whole list can be sorted (the
  # sort takes the smallest of 8, 32, 128, 512, this that holds them); more than either
  # refuses the run. Co-diverted at gamma_pref = 10 needed 367 in a chunk of 50 runs.
  c.segments = 4  # Spans of the recommending periods, each ranking only the items released
  # by its end (speed). It changes the shapes of item-CF's float32 sums, so in rare cases which
  # of two items of equal real score comes first (docs/replication.md): keep it fixed.
  r = config.replication = ml_collections.ConfigDict()
  r.design = "naive"  # naive, data_diverted, codiverted, cluster, switchback, snapshot.
  r.algo1 = "item_cf"  # item_cf, user_cf, random, oracle.
  r.algo2 = "user_cf"
  r.p = 0.5  # The share of users on algo2.
  r.shuffle = 0.0  # Cluster design: the share of each cluster's users moved elsewhere.
  r.shuffle_reading = "share"  # "share": round(shuffle * size) users of each cluster move;
  # "each": each user moves with probability shuffle (the page leaves it open).
  r.cluster_k_min = 2  # The cluster design's k: the best silhouette in [k_min, k_max].
  r.cluster_k_max = 10
  r.runs = 1000  # B.
  r.chunk = 50  # Runs per vectorised chunk; B is padded to whole chunks (memory: about
  # 6 x 400 KB per run). Like choice.segments, keep it fixed across runs you compare.
  r.cpu_devices = 0  # On CPU, chunks run on this many XLA devices at once (0: one per core
  # the process may use; driver/parallel.split_cpu). Results do not depend on it (tested).
  r.seed = 0
  r.rep_offset = 0  # The first run's index (run b has seeds (seed, rep_offset + b)).
  return config
