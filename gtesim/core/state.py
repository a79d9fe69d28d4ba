"""The pytrees the compiled functions read and write.

`Env` holds what every world and repetition shares (the packed logs, the raw feature tables
and the environment's own arrays); `RepData` what differs per repetition (its split, fitted
encoding, evaluation rows, key and each design's set-up), stacked along a leading
repetition axis; `World` the state of one world; `StepOut` what a step reports; `Point` the
traced inputs of one world (p and the alphas), so a sweep is one more mapped axis.
"""

import dataclasses
from typing import Any, NamedTuple

import jax
from flax import struct

from gtesim.data import encoding
from gtesim.models.label_model import Dims


class Logs(NamedTuple):
  """The packed logged rows (data/packing.py): pretraining and evaluation rows in every
  environment, the candidates and outcomes of `replay` and `matrix`."""
  page_video: jax.Array  # [P, C] int32, -1 empty.
  page_labels: jax.Array  # [P, C, L] float32.
  first_page: jax.Array  # [U] int32.
  n_pages: jax.Array  # [U] int32.


class FeatureTables(NamedTuple):
  """The users' and videos' raw encoded features (data/features.py)."""
  user_num: jax.Array
  user_cat: jax.Array
  user_multi: tuple
  video_num: jax.Array
  video_cat: jax.Array
  video_multi: tuple


class Env(NamedTuple):
  """Shared by every world and repetition (replicated on the device mesh)."""
  logs: Logs
  features: FeatureTables
  environment: object  # The environment's own arrays (its module's `Arrays`).


class EvalRows(NamedTuple):
  user: jax.Array  # [E] int32.
  page: jax.Array  # [E] int32.
  col: jax.Array  # [E] int32.
  mask: jax.Array  # [E] bool: a real row (sets smaller than E are padded).


class RepData(NamedTuple):
  key: jax.Array  # The repetition's root key as raw key data (uint32), see prng.stream.
  train_users: jax.Array  # [n_train] int32 user indices the simulation samples from.
  train_video: jax.Array  # [V] bool.
  user_enc: dict  # encoding.fit(...) of the users.
  video_enc: dict
  val_rows: EvalRows  # Validation users x test videos.
  train_rows: EvalRows  # Train users x train videos (train-side metrics).
  designs: dict  # {design name: its per-repetition set-up} for the designs that need one.
  release: jax.Array  # [V] int32: the first step a video may be a candidate (0: from the
  # start; sim.release = "staggered" gives new videos a later one, environments/release.py).
  sim_key: jax.Array  # Raw key data of the simulation draws (prng.sim_key: sim.replicate).


@dataclasses.dataclass(frozen=True)
class Static:
  """Shapes and sizes the compiled functions are specialized on."""
  user_layout: encoding.Layout
  video_layout: encoding.Layout
  page_slots: int
  window_pages: int  # The longest user's pages.
  n_pages: int  # Pages of the environment's packed logs.
  n_users: int = 1  # Users and videos of the dataset (the models' ID tables).
  n_videos: int = 1

  @property
  def width(self):
    return self.user_layout.width + self.video_layout.width

  @property
  def dims(self) -> Dims:
    return Dims(self.user_layout.width, self.video_layout.width, self.n_users, self.n_videos,
                self.user_layout.cat_widths, self.video_layout.cat_widths)


@struct.dataclass
class Point:
  """The traced inputs of one world: p and the ranking weights of its arms."""
  p_treatment: jax.Array  # [] float32: P(user is treated) (its design's meaning of p).
  alpha: jax.Array  # [A, L] float32: ranking weights of the world's arms.
  epsilon: jax.Array  # [] float32: exploration's epsilon (core.exploration).
  temperature: jax.Array  # [] float32: exploration's softmax temperature.


class DesignState(NamedTuple):
  """A world's design state: its learning piece's (weighting: G) and its unit piece's (A/B
  designs: per-user sums); () for a piece without state (designs/pieces.py)."""
  learning: Any
  unit: Any


@struct.dataclass
class World:
  """The state of one world of one repetition."""
  params: tuple  # [arm][label] model parameters.
  opt_state: tuple  # [arm][label] optimizer states.
  memory: object  # What the world recommended: the environment's own state pytree.
  design: DesignState


@struct.dataclass
class StepOut:
  """What one step of one world reports (summed over the step's users)."""
  outcome_sum: jax.Array  # [A, L] sum of the recommended items' labels, per arm.
  outcome_sq: jax.Array  # [A, L] sum of their squares.
  n_recs: jax.Array  # [A] users who got a recommendation, per arm.
  n_exhausted: jax.Array  # [A] sampled users with no eligible candidate, per arm.
  n_short: jax.Array  # [A] sampled users with fewer eligible candidates than n_candidate.
  loss: jax.Array  # [A, L] training loss on the step's items (before the update).
  design: dict  # {metric: []} the design's own per-step metrics (design.reporting.step_metrics).
