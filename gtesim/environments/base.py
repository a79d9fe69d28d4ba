"""The environment interface (SPEC §4): where a step's candidates and outcomes come from.

An environment is static (hashable, resolved once by the registry in environments/__init__.py)
and owns three things: its shared device arrays (`arrays`, Env.environment), its state in a
world (`init_memory`, World.memory: what each user was recommended) and the two phases of a
step that differ between environments: `candidates` (step 2) and `record` (the outcome of a
recommendation and marking it used). Its checks refuse what the data cannot provide.
"""

import dataclasses
from typing import Any, ClassVar, NamedTuple

import jax

from gtesim.core.state import Env, Point, RepData


class Candidates(NamedTuple):
  """A step's candidates per user."""
  video: jax.Array  # [b, k] int32 candidate videos.
  valid: jax.Array  # [b, k] bool: a real candidate.
  n_eligible: jax.Array  # [b] eligible items (catalogue: distinct eligible draws).
  slot: tuple  # Where each candidate is in the environment ((page, col) [b, k] of the packed
  # logs; () in the catalogue).


class StepContext(NamedTuple):
  """What an environment's step hooks see of the step, as one value."""
  spec: Any  # core.step.SimSpec (the static step; core.step imports this module).
  env: Env  # The shared arrays (Env.environment: the environment's own).
  rep: RepData  # The repetition's set-up.
  point: Point  # The world's traced inputs.
  memory: Any  # The world's environment state (the environment's own pytree, init_memory).
  users: jax.Array  # [b] int32 the step's users.
  position: jax.Array  # [b] int32 their positions among the train users.
  cls: jax.Array  # [b] int32 the video class each user draws from (the design's exposure piece).
  t: jax.Array  # The step (int32).


@dataclasses.dataclass(frozen=True)
class Environment:
  """What every environment provides (see the module docstring and docs/extending.md)."""
  name: str  # The registry name (config key `sim.environment`).

  outcomes: ClassVar[tuple] = ("sampled",)  # `sim.outcome` values it offers.
  sampler: ClassVar[str] = ""  # The candidate sampler's name (bench.py reports it).
  short_fix: ClassVar[str] = ""  # What to do when users had fewer than n_candidate.
  offers_release: ClassVar[bool] = False  # sim.release = "staggered" is offered here
  # (environments/release.py says which do and why).

  @classmethod
  def from_config(cls, config, static, n_train: int) -> "Environment":
    raise NotImplementedError

  @classmethod
  def short_advice(cls, config) -> str:
    """What the warning about users short of candidates advises under this config."""
    del config
    return cls.short_fix

  @classmethod
  def check_config(cls, config, active: bool) -> None:
    """Refuses bad values of the environment's own config keys (`active`: it is the run's)."""

  @classmethod
  def check_data(cls, config, ds) -> None:
    """Refuses a dataset the environment cannot run on, naming the config key."""

  @staticmethod
  def arrays(config, ds, packed):
    """The environment's shared arrays on the host (Env.environment)."""
    raise NotImplementedError

  def log_setup(self, log, packed) -> None:
    """A line on what the environment costs, when worth saying."""

  def init_memory(self, spec, env, rep, point):
    """What a fresh world has recommended (nothing), as the environment's state pytree."""
    raise NotImplementedError

  def candidates(self, ctx: StepContext, allowed, released, key) -> Candidates:
    """Up to n_candidate eligible candidates of each of the step's users.

    Args:
      ctx: the step; allowed: videos -> bool, the design's further restriction, or None;
      released: videos -> bool, released by this step (sim.release = "staggered"), or None;
      key: the step's candidate key.
    """
    raise NotImplementedError

  def record(self, ctx: StepContext, cand: Candidates, choice, rec_ok, key):
    """(outcomes [b, L] of the recommended candidates `choice` [b], the world's memory with
    them marked used); `rec_ok` [b]: the user got a recommendation; `key`: the step's
    outcome key."""
    raise NotImplementedError
