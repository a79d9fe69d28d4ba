"""The default configuration: every number the simulator uses lives here or in a config file.

Config files in `configs/` import `get_config()` and override a few fields.
"""

import ml_collections


def label(column, kind, loss, alpha_t, alpha_c, threshold=None, unit=""):
  """One label's section (`config.labels.<name>`)."""
  label = ml_collections.ConfigDict()
  label.column = column  # Log column holding the label (or the one it is derived from).
  label.threshold = ml_collections.config_dict.placeholder(float)  # None: y = the column; a
  # number: y = (column >= threshold), a binary label derived from a numerical column.
  if threshold is not None:
    label.threshold = threshold
  label.type = kind  # "binary" (BCE on logits) or "numerical" (head predicts log1p(y)).
  label.unit = unit  # Unit of a numerical label, for axis labels and reports ("" = none).
  label.loss = loss  # binary: "bce"; numerical: "logmae", "mse" or "mae".
  label.alpha_T = alpha_t  # Weight of this label's prediction in the treatment ranking score.
  label.alpha_C = alpha_c  # Weight of this label's prediction in the control ranking score.
  label.update(_model())
  return label


def model_section() -> ml_collections.ConfigDict:
  """A model section with every default (what a label's section holds of its model)."""
  return _model()


def model_keys() -> tuple:
  """The dotted keys of a model section (what `arms.<arm>.labels.<name>` may override)."""
  return tuple(flat_keys(_model()))


def flat_keys(section, prefix=""):
  """The dotted leaf keys of a config section."""
  for key, value in section.items():
    if isinstance(value, ml_collections.ConfigDict):
      yield from flat_keys(value, f"{prefix}{key}.")
    else:
      yield f"{prefix}{key}"


def at(section, dotted: str):
  """The value of a dotted key of a config section (`mlp.hidden`)."""
  for part in dotted.split("."):
    section = section[part]
  return section


def _model():
  """A model's section: its class (models/__init__.py's registry), what every class shares,
  and one subsection per class (and the ID classes' shared `ids`)."""
  m = ml_collections.ConfigDict()
  m.model = "mlp"  # Model class: "mlp" (features only), "two_tower" (user and video towers
  # over ID embeddings and features, dot product) or "wide_deep" (linear ID and cross terms +
  # the MLP).
  m.dropout = 0.0  # Dropout rate on hidden layers while training (every class).
  m.learning_rate = 1e-3  # AdamW learning rate of the dense parameters.
  m.weight_decay = 1e-4  # AdamW decoupled weight decay of the dense parameters.
  m.mlp = ml_collections.ConfigDict()
  m.mlp.hidden = (128, 64)  # Hidden layer widths.
  m.two_tower = ml_collections.ConfigDict()
  m.two_tower.tower_hidden = (64,)  # Hidden layer widths of each tower.
  m.two_tower.tower_dim = 32  # Output width of each tower (the dot product's dimension).
  m.two_tower.id_dim = 16  # ID embedding width (each row also holds the id's bias).
  m.wide_deep = ml_collections.ConfigDict()
  m.wide_deep.hidden = (128, 64)  # The deep part's hidden layer widths.
  m.wide_deep.cross_buckets = 1_048_576  # Rows of the hashed user-feature x video-feature
  # cross terms.
  m.ids = ml_collections.ConfigDict()  # The ID tables of two_tower and wide_deep.
  m.ids.budget = 5_000_000  # A table has one row per id when the users (videos) number at
  # most this; otherwise they are hashed into ids.buckets rows.
  m.ids.buckets = 2_097_152  # Rows of a hashed ID table (the collision rate is logged).
  m.ids.learning_rate = 0.05  # Row-wise AdaGrad learning rate of the ID tables.
  m.ids.initial_accumulator = 0.1  # Row-wise AdaGrad's initial accumulator value.
  m.ids.eps = 1e-8  # Row-wise AdaGrad's epsilon.
  m.ids.dropout = 0.0  # While training, an id's row is replaced by the zero (unknown) row
  # with this probability, so the features alone also learn to score (ids never seen in
  # pretraining start at zero).
  return m


ARMS = ("treatment", "control")  # The A/B arms' names in `arms.<arm>` (index 0 and 1).


def arm_sections(labels) -> ml_collections.ConfigDict:
  """`config.arms`: per arm and label, an override of any key of the label's model section
  (None: the label's own value), so treatment and control may rank with different model
  classes and sizes (`arms.treatment.labels.click.model = "two_tower"`). GT worlds run the
  treatment's ranker, GC worlds the control's. Rebuild it when a config replaces its labels."""
  arms = ml_collections.ConfigDict()
  for arm in ARMS:
    arms[arm] = ml_collections.ConfigDict()
    arms[arm].labels = ml_collections.ConfigDict()
    for name in labels:
      arms[arm].labels[name] = arm_label_section()
  return arms


def arm_label_section(model=None) -> ml_collections.ConfigDict:
  """One label's overrides in `arms.<arm>.labels.<name>`: every model key (in its
  subsection), None by default."""
  section = ml_collections.ConfigDict()
  for key, value in (model or _model()).items():
    section[key] = (arm_label_section(value) if isinstance(value, ml_collections.ConfigDict)
                    else ml_collections.config_dict.placeholder(type(value)))
  return section


def study_section() -> ml_collections.ConfigDict:
  """The `study` section of a study config (scripts/study.py)."""
  study = ml_collections.ConfigDict()
  study.name = "study"  # Folder under experiments/.
  study.designs = ("pooling", "splitting", "snapshot", "weighting", "codiverted", "cluster",
                   "switchback")  # A/B designs to compare.
  study.p_values = (0.1, 0.2, 0.5, 0.8, 0.9)  # p sweep at alpha gap 1 (experiment.p_treatment
  # is the main point).
  study.alpha_gaps = (0.0, 0.25, 0.5, 1.0)  # Gap sweep at the main p; 0 is the A/A.
  study.frozen_truth = True  # Also the global truth with frozen models (policy effect at the
  # pretrained model), against which snapshot is scored too.
  study.weighting_video = True  # Also weighting with G on video features only.
  study.epsilons = ()  # sim.exploration = "epsilon": more epsilons (besides sim.epsilon) at
  # which study.exploration_designs run (one more mapped axis) and the truth is rerun.
  study.exploration_designs = ("pooling", "splitting")  # Designs swept over study.epsilons.
  study.truth_replicates = 1  # K: each repetition's truth is the mean of K global runs from
  # its production model with independent draws (sim.replicate 1..K, independent of the
  # designs' draws too); choose K so that the truth's SE is at most a third of the estimate's.
  study.expected_truth = False  # Latent environment: also the truth with expected outcomes
  # (sim.outcome = "expected"; its models learn from expectations: reported, not scored).
  study.bootstrap = 2000  # Bootstrap resamples of the repetitions (intervals, inflation).
  study.sweep_repetitions = 0  # > 0: the sweep points (the other p and gaps) run on the
  # first this many repetitions only, in jobs of their own ("<design>-sweep",
  # "truth-sweep-r<k>"); the main point and the A/A run on all of them. 0: every point on all.
  study.production_states = ()  # The mechanism sweep over the production model's state:
  # (name, pretraining rows, most pretraining epochs or 0 for pretrain.max_epochs) per state,
  # e.g. (("cold", 2000, 1), ("partial", 20000, 2)); each gets its own production models
  # (production-<name>/), truth and study.state_designs at the main point ("<job>@<name>").
  study.state_designs = ("pooling", "splitting", "weighting")
  study.state_repetitions = 0  # Repetitions of the state sweep's jobs (0: all).
  study.switchback_variants = ()  # (steps per period, burn-in steps) pairs: switchback also
  # at each, at the main point and the A/A (carry-over: how the bias moves with them).
  return study


def advise_section() -> ml_collections.ConfigDict:
  """The `advise` section of an advisor config (scripts/advise.py, gtesim/study/advise.py)."""
  advise = ml_collections.ConfigDict()
  advise.designs = ("pooling", "splitting", "snapshot", "weighting", "codiverted", "cluster",
                    "switchback")  # The designs compared (each with every estimator of
  # estimator.names that applies to it) at experiment.p_treatment, gap 1.
  advise.batch = 40  # Repetitions added per batch (one study of its own, rep_offset shifted).
  advise.max_batches = 8  # At most this many batches (the paired test's looks).
  advise.budget_s = 1800.0  # No batch starts that the last one's cost says would end later.
  advise.alpha = 0.05  # Level of the simultaneous bound on the lowest-RMSE cell's RMSE minus
  # every other cell's, split evenly over the max_batches looks (Bonferroni), so looking after
  # every batch does not inflate it.
  advise.margin = 0.1  # Decided when no cell's RMSE is shown lower than the best's by more than
  # this share of |GTE| (the true effect; 0: only when the best is shown the lowest).
  advise.label = ""  # The label the decision is about ("": the first of config.labels).
  advise.truth_replicates = 4  # K global replicates per repetition (>= 2: the truth's SE).
  advise.bootstrap = 1000  # Bootstrap resamples of the intervals (inflation, bias %, RMSE).
  return advise


def _user_features(*extra_categorical) -> ml_collections.ConfigDict:
  """The user-table declaration (KuaiRand's and KuaiRec's user tables share their columns)."""
  return ml_collections.ConfigDict(dict(
      numerical=("follow_user_num", "fans_user_num", "friend_user_num", "register_days"),
      log1p=("follow_user_num", "fans_user_num", "friend_user_num", "register_days"),
      categorical=("user_active_degree", *extra_categorical, "is_live_streamer",
                   "is_video_author", "onehot_feat0", "onehot_feat1", "onehot_feat2",
                   "onehot_feat4", "onehot_feat5", "onehot_feat6", "onehot_feat9",
                   "onehot_feat10", "onehot_feat11", "onehot_feat12", "onehot_feat13",
                   "onehot_feat14", "onehot_feat15", "onehot_feat16", "onehot_feat17"),
      multi_hot=(),
  ))


def use_kuairec(config, name="kuairec") -> ml_collections.ConfigDict:
  """Switches a config to KuaiRec 2.0 (`name` "kuairec", or "synthetic-kuairec" for the
  generated KuaiRec-format data): the small matrix is the environment (`matrix`), the big
  matrix pretrains the production models; labels watch_ratio, play_duration, long_view."""
  data = config.data
  data.name = name
  data.logs = ("small_matrix",)
  data.pretrain_logs = ("big_matrix",)
  data.features = feats = ml_collections.ConfigDict()
  feats.user = _user_features("is_lowactive_period")
  feats.video_daily = ml_collections.ConfigDict(dict(
      numerical=("video_duration", "video_width", "video_height", "show_cnt", "play_cnt",
                 "complete_play_cnt", "play_progress", "like_cnt", "share_cnt"),
      log1p=("video_duration", "show_cnt", "play_cnt", "complete_play_cnt", "like_cnt",
             "share_cnt"),
      categorical=("video_type", "upload_type", "visible_status"),
      multi_hot=(),
  ))
  feats.video_categories = ml_collections.ConfigDict(dict(
      numerical=(), log1p=(), categorical=(), multi_hot=("feat",)))
  config.labels = ml_collections.ConfigDict()
  # Treatment ranks by predicted watch ratio (favours videos watched through, often short
  # ones), control by predicted play duration (favours long ones); long_view (watch_ratio >= 2,
  # a re-watch) is an outcome both are scored on.
  config.labels.watch_ratio = label("watch_ratio", "numerical", "logmae", alpha_t=1.0,
                                    alpha_c=0.0, unit="play / duration")
  config.labels.play_duration = label("play_duration", "numerical", "logmae", alpha_t=0.0,
                                      alpha_c=1e-4, unit="ms")
  config.labels.long_view = label("watch_ratio", "binary", "bce", alpha_t=0.0, alpha_c=0.0,
                                  threshold=2.0)
  config.arms = arm_sections(config.labels)
  config.sim.environment = "matrix"
  return config


def get_config() -> ml_collections.ConfigDict:
  """Returns the base configuration (global mode, synthetic Pure-like data)."""
  config = ml_collections.ConfigDict()
  config.mode = "global"  # global (GT/GC worlds), or an A/B design: pooling, splitting,
  # snapshot, weighting, codiverted, cluster, switchback.
  config.seed = 0  # Root seed; repetition b uses (seed, rep_offset + b).
  config.repetitions = 8  # B: repetitions run in parallel (a vmap axis).
  config.rep_offset = 0  # Index of the first repetition (SLURM array jobs shift it).
  config.checkpoint_every = 100  # Steps between orbax checkpoints (multiple of validate_every).
  config.join_timeout_s = 60  # Several processes (SLURM ntasks > 1): seconds to wait for all
  # of them to join jax.distributed before refusing (a missing srun would otherwise hang).

  config.data = data = ml_collections.ConfigDict()
  data.name = "synthetic"  # "synthetic" (embedded KuaiRand-format, generated), "kuairand" or
  # "kuairec" (CSVs in data.root), "synthetic-kuairec" (KuaiRec-format, generated).
  data.root = ""  # Folder of the dataset's CSVs; synthetic: where to write them ("": the
  # repository's data/synthetic when run from a checkout, else ./data/synthetic).
  data.cache_dir = ""  # Columnar cache folder; "" = <root>/.gtesim_cache.
  data.logs = ("standard", "random")  # Which logs are the environment (KuaiRand: standard,
  # random; KuaiRec: small_matrix).
  data.pretrain_logs = ()  # Logs that only pretrain the production models (KuaiRec:
  # big_matrix); () = pretrain on the environment logs.
  data.user_id = "user_id"  # Log/user-table id column.
  data.video_id = "video_id"  # Log/video-table id column.
  data.missing_codes = (-124.0,)  # Values meaning "missing" in feature columns (KuaiRand: -124).
  data.max_history = 0  # Interactions kept per user (longer histories are subsampled, logged);
  # 0 keeps every row. Uniform candidate sampling costs the same at any history length.
  data.page_slots = 32  # Slots per page of the packed layout (padding < this per user).
  data.pack_seed = 0  # Seed of the (logged) subsampling of histories over max_history.
  data.user_p_val = 0.1  # Fraction of users held out for validation (per repetition).
  data.video_p_test = 0.1  # Fraction of videos held out for testing (0 disables).

  data.synthetic = syn = ml_collections.ConfigDict()
  syn.size = "pure"  # One of gtesim/data/sizes.py's SYNTHETIC_SIZES: tiny, mini, small, pure,
  # 1k, 27k.
  syn.seed = 0  # Generator seed (the dataset is a pure function of size and seed).
  syn.latent_dim = 8  # Dimension of latent user taste / video topic vectors.
  syn.click_rate = 0.33  # Target click rate over all logs.
  syn.feature_signal = 0.75  # Share of latent variance the observable features explain.
  syn.duplicate_rate = 0.002  # Fraction of log rows written twice (a real-data quirk).
  syn.rows_per_part = 5_000_000  # Logs longer than this are written as _partN files.
  syn.kuairec_size = "small"  # data.name = "synthetic-kuairec": one of SYNTHETIC_KUAIREC_SIZES.
  syn.blocked_rate = 0.004  # KuaiRec format: share of the small matrix's pairs left out.

  # Declared features per source table; undeclared columns are never read.
  data.features = feats = ml_collections.ConfigDict()
  feats.user = _user_features()
  feats.video_basic = ml_collections.ConfigDict(dict(
      numerical=("video_duration", "server_width", "server_height"),
      log1p=("video_duration",),
      categorical=("video_type", "upload_type", "music_type"),
      multi_hot=("tag",),
  ))
  feats.video_statistic = ml_collections.ConfigDict(dict(
      numerical=("show_cnt", "play_cnt", "complete_play_cnt", "play_progress", "like_cnt",
                 "share_cnt", "follow_user_num"),
      log1p=("show_cnt", "play_cnt", "complete_play_cnt", "like_cnt", "share_cnt",
             "follow_user_num"),
      categorical=(),
      multi_hot=(),
  ))

  # Labels keyed by name; treatment ranks by play time, control by click probability.
  config.labels = ml_collections.ConfigDict()
  config.labels.click = label("is_click", "binary", "bce", alpha_t=0.0, alpha_c=1.0)
  config.labels.play_time = label("play_time_ms", "numerical", "logmae",
                                  alpha_t=1e-4, alpha_c=0.0, unit="ms")
  config.arms = arm_sections(config.labels)

  config.optim = optim = ml_collections.ConfigDict()
  optim.grad_clip = 1.0  # Global-norm gradient clipping of each model's update.

  config.pretrain = pre = ml_collections.ConfigDict()
  pre.enabled = True  # False: the "production" models are untrained (a warning is logged).
  pre.n_interactions = 200_000  # Logged train-user x train-video rows to pretrain on.
  pre.batch_size = 1024  # Minibatch size.
  pre.max_epochs = 40  # Upper bound on passes over the rows.
  pre.patience = 3  # Epochs without improvement of the validation loss before a model stops.
  pre.min_delta = 1e-3  # Relative improvement of the validation loss that counts.

  config.experiment = exp = ml_collections.ConfigDict()
  exp.p_treatment = 0.5  # P(user is treated) in A/B designs.
  exp.assignment = "user"  # "user": drawn once per user and repetition; "step": every step.
  exp.weighting = w = ml_collections.ConfigDict()  # The weighting design's keys.
  w.clip = 0.0  # Clip G/p and (1-G)/(1-p) at this value; 0 = no clip.
  w.g_update = "after"  # Update G "after" (weights from a G that has not yet seen the step's
  # items) or "before" the label models within a step.
  w.features = "all"  # G sees "all" features, or "video" features only.
  w.g = _model()  # G(x) ~ P(Z=1 | x), trained with BCE: a model section like a label's.
  exp.codiverted = cd = ml_collections.ConfigDict()  # The co-diverted design's keys.
  cd.p_items = ml_collections.config_dict.placeholder(float)  # P(video in the treatment arm),
  # drawn per video and repetition; None = p_treatment (also along a sweep).
  cd.training = "diverted"  # "diverted" (each arm's models train on their own arm's data) or
  # "pooled" (both on everything).
  exp.cluster = cl = ml_collections.ConfigDict()  # The cluster design's keys.
  cl.n = 20  # k-means clusters of the users (per repetition).
  cl.column = ""  # A declared categorical user feature (e.g. "user.user_active_degree") whose
  # values are the clusters, instead of k-means.
  cl.iterations = 20  # Lloyd iterations of k-means.
  cl.shuffle = 0.0  # Share of users moved to a random other cluster.
  exp.switchback = sb = ml_collections.ConfigDict()  # The switchback design's keys.
  sb.every = 14  # Steps per period; the population switches between them.
  sb.order = "balanced"  # "balanced" (exactly round(p x periods) treated periods, in random
  # order), "random" (each period treated with probability p: some repetitions may get no
  # period of an arm) or "alternating" (T, C, T, ... from a random first arm; needs p = 0.5).
  sb.burn_in = 2  # First steps of each period left out of the estimate.

  config.sweep = sweep = ml_collections.ConfigDict()
  sweep.p_treatment = ()  # p values to run as one vmapped axis; () = experiment.p_treatment.
  sweep.alpha_gap = ()  # Gaps lambda: alpha_T(l) = (1-l) alpha_C + l alpha_T; () = (1.0,).
  sweep.points = ()  # Explicit ((p, lambda), ...) pairs instead of the product of the two.
  # The run's points are the product of the two (or the listed pairs); lambda = 0 is the A/A.
  sweep.epsilon = ()  # sim.exploration = "epsilon": epsilons to run as one more mapped axis
  # (crossed with the points above); () = sim.epsilon. A/B designs only.
  sweep.temperature = ()  # sim.exploration = "softmax": temperatures, likewise.

  config.estimator = est = ml_collections.ConfigDict()
  est.batch_blocks = 10  # Blocks of consecutive steps of the batch-means standard error.
  est.names = ()  # Estimators scored beside the difference in means (always scored:
  # result.json's gte) at every A/B point, from gtesim/stats/estimators/ (result.json
  # estimators.<name>, study.json cells <design>+<name>).
  est.p_extrapolation = ml_collections.ConfigDict()
  est.p_extrapolation.form = "linear"  # Each arm's mean in p: "linear" (>= 2 swept p) or
  # "quadratic" (>= 3), extrapolated to p = 1 (treated) and p = 0 (control).
  est.dq = ml_collections.ConfigDict()
  est.dq.horizons = (1, 5, 20)  # Differences-in-Q (needs experiment.assignment = "step"):
  # steps k after a recommendation credited to it; each k is scored as dq-k=<k> (k = 0: the
  # difference in means).

  config.sim = sim = ml_collections.ConfigDict()
  sim.release = "all"  # "all": every video is a candidate from the start; "staggered"
  # (latent, matrix): a share sim.new_video_share of the train videos is new, left out of pretraining
  # and released at a step uniform over the horizon (environments/release.py).
  sim.new_video_share = 0.2  # sim.release = "staggered": share of the train videos that are
  # new.
  sim.environment = "replay"  # Where candidates and outcomes come from: "replay" (each user's
  # logged items and their logged outcomes), "matrix" (a fully observed matrix, e.g. KuaiRec's
  # small matrix, replayed: every pair has an outcome) or "latent" (synthetic data only:
  # candidates from the whole catalogue, outcomes drawn from the latent model).
  sim.outcome = "sampled"  # latent: "sampled" outcomes, or "expected" (E[y | pair], no noise).
  sim.retrieval = "uniform"  # Candidate draw among the eligible items: "uniform", or
  # "popularity" (probability ~ (rows of the video in all loaded logs + 1) ** popularity_power,
  # drawn without replacement).
  sim.popularity_power = 1.0
  sim.candidate_draws = 64  # latent: draws per user and step from which the first n_candidate
  # distinct, unrecommended train videos are the candidates (fewer are counted as n_short);
  # matrix with staggered release and uniform retrieval: eligible slots drawn, of which the
  # first n_candidate released ones are the candidates.
  sim.matrix_min_density = 0.9  # matrix: refuse environment logs with fewer outcomes than
  # this share of their users x videos.
  sim.n_steps = 200  # Simulation steps.
  sim.batch_size = 256  # Train users sampled per step.
  sim.n_candidate = 16  # Candidates per user (fewer when fewer are eligible).
  sim.exploration = "greedy"  # How a user's recommendation is chosen from its scored
  # candidates: "greedy" (the top score), "epsilon" (with probability sim.epsilon a uniform
  # candidate, else the top) or "softmax" (drawn ~ exp(z / sim.temperature), z the user's
  # scores standardised over its candidates).
  sim.epsilon = 0.0  # epsilon-greedy's exploration probability, in [0, 1].
  sim.temperature = 1.0  # softmax's temperature (> 0) on standardised scores.
  sim.updates_per_step = 1  # Optimizer updates on each step's recommended items.
  sim.arm_blocks = 4  # A/B designs: the batch, sorted by arm, is scored in this many blocks
  # with one arm's models each, plus the block where the arms meet again (5/4 of one arm's
  # work at 4; measured on 2 CPU cores at 256 x 16: 1.25x one arm's scoring time at 4 blocks,
  # 1.7x at 8, 1.8x scoring every user with both arms).
  sim.validate_every = 20  # Steps between validations (and the scan chunk length).
  sim.eval_rows = 8192  # Fixed validation/train-side evaluation rows per repetition (the
  # validation rows also decide when pretraining stops).
  sim.train_models = True  # False: models stay pretrained (the "frozen" global truth).
  sim.replicate = 0  # >= 1: the simulation's draws (users, candidates, assignment, outcomes)
  # of an independent replicate of each repetition, from the same split and production model
  # (a study's truth replicates, study.truth_replicates).
  sim.vectorize = "auto"  # Repetitions and worlds: "map" (lax.map: each repetition's program
  # is the same whatever B, so results are exact across B and devices), "vmap", or "auto"
  # (map on CPU, vmap on accelerators).
  return config
