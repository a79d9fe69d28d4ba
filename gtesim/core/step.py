"""The simulation step (SPEC §4) as pure functions of one repetition's world.

One step in one world, in five phases (`step` composes them; bench.py times prefixes of
them through `step_prefix`): sampling (`draw`: train users, their arms, candidates among
each user's eligible items, from the environment), features, scoring (`choose`: each user's
candidates ranked by its own arm's models and alphas, the argmax recommended), bookkeeping
(`record`, `tally`: the outcome and the items marked used, from the environment; the per-arm
sums and the design's own tally) and training (`learn`: the label models on the recommended
items with the design's masks and weights). Every variant is static: the design's pieces and
the environment objects in the SimSpec.
"""

import dataclasses
from typing import TYPE_CHECKING, NamedTuple

import jax
import jax.numpy as jnp

from gtesim.core import exploration as exploration_lib
from gtesim.core import features as features_lib
from gtesim.core import training
from gtesim.core.sampling import sample_users, step_keys
from gtesim.core.scoring import CONTROL, TREATMENT, blocked_scores, predictions
from gtesim.core.scoring import two_ranker_scores
from gtesim.core.state import DesignState, Env, RepData, Static, StepOut, World
from gtesim.environments import release
from gtesim.environments.base import Candidates, Environment, StepContext
from gtesim.models import Pairs

if TYPE_CHECKING:  # The designs use the core's building blocks; the core calls their pieces.
  from gtesim.designs.base import Design

PHASES = ("sampling", "features", "scoring", "bookkeeping", "training")


@dataclasses.dataclass(frozen=True)
class SimSpec:
  """Static description of the compiled simulation."""
  static: Static
  rankers: tuple  # The run's distinct rankers, each a tuple of models.LabelModel per label
  # (models.rankers: one when both arms rank alike).
  batch_size: int
  n_candidate: int
  updates_per_step: int
  n_train: int  # Train users per repetition.
  design: "Design"
  environment: Environment
  exploration: exploration_lib.Greedy = exploration_lib.Greedy()  # How a user's choice is
  # drawn from its scored candidates (core.exploration: Greedy or a subclass).
  staggered: bool = False  # sim.release = "staggered": videos become candidates at their
  # release step (environments/release.py).
  arm_blocks: int = 4  # A/B designs: blocks of the batch in per-arm scoring (blocked_scores).
  arm_rankers: tuple = (0,)  # Index into `rankers` of each arm of the worlds this spec steps
  # (global worlds: GT the treatment's ranker, GC the control's; A/B worlds: both).
  ranker_prefixes: tuple = ("",)  # Each ranker's name prefix in pretraining's metrics.

  @property
  def models(self) -> tuple:
    """The first arm's LabelModels (what the labels are: kinds, names, count)."""
    return self.rankers[self.arm_rankers[0]]

  def arm_models(self, arm: int) -> tuple:
    """The LabelModels arm `arm` ranks and learns with."""
    return self.rankers[self.arm_rankers[arm]]

  @property
  def shared_ranker(self) -> bool:
    """Every arm of these worlds ranks with the same models."""
    return len(set(self.arm_rankers)) == 1

  @property
  def steps_per_epoch(self) -> int:
    return self.n_train // self.batch_size


class Draw(NamedTuple):
  """A step's users, their arms and their candidates (the sampling phase)."""
  users: jax.Array  # [b] user indices.
  position: jax.Array  # [b] their positions among the train users.
  z: jax.Array  # [b] bool: treated.
  arm: jax.Array  # [b] int32 arm index.
  cls: jax.Array  # [b] int32 video class each user draws from (the design's exposure piece).
  cand: Candidates


class Scored(NamedTuple):
  """The recommendation of each user (the features and scoring phases)."""
  choice: jax.Array  # [b] index of the recommended candidate.
  rec: Pairs  # The recommended (user, video) pairs: what the models train on.


def draw(spec: SimSpec, env: Env, rep: RepData, point, world: World, t) -> Draw:
  """Sampling: the step's users, their assignment and their candidates."""
  design = spec.design
  users, position = sample_users(spec, rep, t)
  cand_key, _, assign_key, _, _ = step_keys(rep, t)
  z = design.assignment.assign(rep, users, assign_key, point.p_treatment, t)
  arm = jnp.where(z, TREATMENT, CONTROL).astype(jnp.int32)  # Global worlds: all 0.
  cls = design.exposure.user_class(arm)
  allowed = design.exposure.allowed(rep, point, z)
  released = release.allowed(rep, t) if spec.staggered else None
  ctx = StepContext(spec, env, rep, point, world.memory, users, position, cls, t)
  cand = spec.environment.candidates(ctx, allowed, released, cand_key)
  return Draw(users, position, z, arm, cls, cand)


def design_state(spec: SimSpec, rep: RepData, point) -> DesignState:
  """The design's state in a fresh world: its learning piece's and its unit piece's."""
  design = spec.design
  return DesignState(design.learning.init_state(spec, rep, point),
                     design.unit.init_state(spec, rep, point))


def arm_order(spec: SimSpec, d: Draw):
  """Two-arm worlds: the batch order that groups the users by arm (treatment first); else
  None."""
  return jnp.argsort(d.arm, stable=True) if spec.design.arms == 2 else None


def features(spec: SimSpec, env: Env, rep: RepData, d: Draw, order) -> Pairs:
  """The users (in `order`, arm_order, when given) with their candidates."""
  users, video = (d.users, d.cand.video) if order is None else (d.users[order],
                                                                d.cand.video[order])
  return features_lib.pairs(spec.static, env, rep, users, video)


def choose(spec: SimSpec, rep: RepData, point, world: World, d: Draw, pairs: Pairs, order,
           t) -> Scored:
  """Scoring: every user's candidates ranked by its arm's models; the argmax is recommended."""
  rows = jnp.arange(d.users.shape[0])
  if order is None:
    scores = jnp.einsum("l,lbk->bk", point.alpha[0],
                        predictions(spec.models, world.params[0], pairs))
    at = rows
  else:
    if spec.shared_ranker:
      sorted_scores = blocked_scores(spec.models, world.params, point.alpha, pairs,
                                     d.arm[order], spec.arm_blocks)
    else:  # Arms of different model classes cannot share a block's stacked parameters.
      sorted_scores = two_ranker_scores([spec.arm_models(a) for a in range(2)],
                                        world.params, point.alpha, pairs, d.arm[order])
    at = jnp.zeros_like(order).at[order].set(rows)  # Each user's row in the sorted order.
    scores = sorted_scores[at]
  choice = spec.exploration.choose(scores, d.cand.valid, point, step_keys(rep, t)[4])
  rec = Pairs(pairs.user_x[at], pairs.video_x[at, choice], d.users, d.cand.video[rows, choice],
              pairs.user_cat[at], pairs.video_cat[at, choice])
  return Scored(choice, rec)


def record(spec: SimSpec, env: Env, rep: RepData, point, world: World, d: Draw, s: Scored,
           t):
  """Bookkeeping: the recommendations' outcomes [b, L] and the world's memory of what each
  user was recommended. Returns (outcomes, rec_ok [b], memory)."""
  rec_ok = d.cand.valid[:, 0]
  ctx = StepContext(spec, env, rep, point, world.memory, d.users, d.position, d.cls, t)
  y, memory = spec.environment.record(ctx, d.cand, s.choice, rec_ok, step_keys(rep, t)[3])
  return y, rec_ok, memory


def tally(spec: SimSpec, world: World, d: Draw, y, rec_ok, t):
  """Bookkeeping: the design's own tally (A/B designs: per-user sums) and the step's sums per
  arm. Returns (design state, the StepOut fields but loss and design)."""
  design = spec.design
  arm_of = d.arm[None, :] == jnp.arange(design.arms)[:, None]  # [A, b]
  in_arm = arm_of & rec_ok[None, :] & design.counting.counted(t)  # Enters the estimate.
  yw = jnp.where(in_arm[..., None], y[None], 0.0)  # [A, b, L]
  state = world.design._replace(unit=design.unit.tally(world.design.unit, d.position, in_arm,
                                                       yw))
  return state, (jnp.sum(yw, axis=1), jnp.sum(yw * yw, axis=1), jnp.sum(in_arm, axis=1),
                 jnp.sum(arm_of & (d.cand.n_eligible == 0), axis=1),
                 jnp.sum(arm_of & (d.cand.n_eligible < spec.n_candidate), axis=1))


def learn(spec: SimSpec, rep: RepData, point, world: World, state, d: Draw, s: Scored, y,
          rec_ok, t):
  """Training: the design's weights (and its own models, e.g. weighting's G), then every
  arm's label models on the step's items.

  Returns (params, opt_state, design state, losses [A, L], the design's step metrics).
  """
  design = spec.design
  dropout_key = step_keys(rep, t)[1]
  learning, mask, weight, design_metrics = design.learning.weights(
      spec, state.learning, rep, point, s.rec, d.z, rec_ok, dropout_key)
  state = state._replace(learning=learning)
  params, opt_state, losses = [], [], []
  for a in range(design.arms):
    if design.learning.trains:
      p, o, loss = training.train_update(spec.arm_models(a), world.params[a],
                                         world.opt_state[a],
                                         s.rec, y, mask[a] * weight[a], jnp.sum(mask[a]),
                                         jax.random.fold_in(dropout_key, a),
                                         spec.updates_per_step)
    else:
      p, o = world.params[a], world.opt_state[a]
      loss = training.losses_only(spec.arm_models(a), p, s.rec, y, mask[a] * weight[a],
                                  jnp.sum(mask[a]))
    params.append(p)
    opt_state.append(o)
    losses.append(loss)
  return tuple(params), tuple(opt_state), state, jnp.stack(losses), design_metrics


def _phases(spec: SimSpec, env: Env, rep: RepData, point, world: World, t, n_phases: int):
  """The first n_phases phases of a step: (world, StepOut) after all five, else (the world as
  far as they changed it, a checksum of the last phase's outputs that keeps them computed)."""
  d = draw(spec, env, rep, point, world, t)
  if n_phases == 1:
    return world, (jnp.sum(d.cand.video) + jnp.sum(d.cand.n_eligible)).astype(jnp.float32)
  order = arm_order(spec, d)
  pairs = features(spec, env, rep, d, order)
  if n_phases == 2:
    return world, jnp.sum(pairs.user_x) + jnp.sum(pairs.video_x)
  s = choose(spec, rep, point, world, d, pairs, order, t)
  if n_phases == 3:
    return world, jnp.sum(s.rec.user_x) + jnp.sum(s.rec.video_x) + jnp.sum(s.choice)
  y, rec_ok, memory = record(spec, env, rep, point, world, d, s, t)
  state, sums = tally(spec, world, d, y, rec_ok, t)
  if n_phases == 4:
    return dataclasses.replace(world, memory=memory, design=state), jnp.sum(sums[0])
  params, opt_state, state, losses, design_metrics = learn(spec, rep, point, world, state, d,
                                                           s, y, rec_ok, t)
  return World(params, opt_state, memory, state), StepOut(*sums, losses, design_metrics)


def step(spec: SimSpec, env: Env, rep: RepData, point, world: World, t):
  """One simulation step of one world; returns (new World, StepOut)."""
  return _phases(spec, env, rep, point, world, t, len(PHASES))


def step_prefix(spec: SimSpec, env: Env, rep: RepData, point, world: World, t, n_phases: int):
  """The step's first `n_phases` phases (bench.py's profile): (world, a float checksum)."""
  world, out = _phases(spec, env, rep, point, world, t, n_phases)
  if n_phases == len(PHASES):
    out = jnp.sum(out.outcome_sum) + jnp.sum(out.loss)
  return world, out
