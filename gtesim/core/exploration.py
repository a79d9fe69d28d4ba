"""How a user's recommendation is chosen from its scored candidates (`sim.exploration`).

greedy: the highest score. epsilon: with probability epsilon (`Point.epsilon`, traced) a
candidate drawn uniformly among the user's valid ones, else the greedy choice. softmax: a
candidate drawn with probability proportional to exp(z / temperature) (`Point.temperature`,
traced), z the user's scores standardised over its valid candidates (mean 0, sd 1; all 0
when they are equal), so one temperature means the same for every mix of labels and alphas.

The random numbers depend on (repetition, step, the user's row in the step's batch) only,
never on the world or its arm: two worlds that score a user's candidates alike choose alike
(common random numbers; an A/A is exactly 0).
"""

import dataclasses
import math

import jax
import jax.numpy as jnp

from gtesim.errors import require
from gtesim.registry import Registry


@dataclasses.dataclass(frozen=True)
class Greedy:
  """The highest-scoring valid candidate."""
  traced = ()  # Point fields the rule reads.

  def choose(self, scores, valid, point, key):
    del point, key
    return jnp.argmax(jnp.where(valid, scores, -jnp.inf), axis=1)


@dataclasses.dataclass(frozen=True)
class EpsilonGreedy(Greedy):
  """With probability epsilon a uniform valid candidate, else the greedy choice."""
  traced = ("epsilon",)

  def choose(self, scores, valid, point, key):
    greedy = super().choose(scores, valid, point, key)
    k_explore, k_pick = jax.random.split(key)
    explore = jax.random.uniform(k_explore, scores.shape[:1]) < point.epsilon
    # The argmax of i.i.d. uniforms over the valid candidates is uniform among them.
    uniform = jnp.argmax(jnp.where(valid, jax.random.uniform(k_pick, scores.shape), -1.0),
                         axis=1)
    return jnp.where(explore, uniform, greedy)


@dataclasses.dataclass(frozen=True)
class Softmax(Greedy):
  """A candidate drawn proportionally to exp(standardised score / temperature)."""
  traced = ("temperature",)

  def choose(self, scores, valid, point, key):
    n = jnp.maximum(jnp.sum(valid, axis=1, keepdims=True), 1)
    s = jnp.where(valid, scores, 0.0)
    mean = jnp.sum(s, axis=1, keepdims=True) / n
    var = jnp.sum(jnp.where(valid, (scores - mean) ** 2, 0.0), axis=1, keepdims=True) / n
    sd = jnp.sqrt(var)
    z = jnp.where(sd > 0, (scores - mean) / jnp.where(sd > 0, sd, 1.0), 0.0)
    gumbel = jax.random.gumbel(key, scores.shape)  # Gumbel-max: a draw from the softmax.
    return jnp.argmax(jnp.where(valid, z / point.temperature + gumbel, -jnp.inf), axis=1)


EXPLORATIONS = Registry("exploration", "sim.exploration")
EXPLORATIONS.register("greedy", Greedy)
EXPLORATIONS.register("epsilon", EpsilonGreedy)
EXPLORATIONS.register("softmax", Softmax)


def make(config):
  return EXPLORATIONS.get(config.sim.exploration)()


def check_config(config) -> None:
  """The exploration keys: the rule exists, its values are in range, a swept value is the
  rule's own."""
  rule = make(config)
  sim, sweep = config.sim, config.sweep
  require(0 <= sim.epsilon <= 1, "sim.epsilon", "must be in [0, 1].")
  require(all(0 <= e <= 1 for e in sweep.epsilon), "sweep.epsilon",
          "every epsilon must be in [0, 1].")
  require(math.isfinite(sim.temperature) and sim.temperature > 0, "sim.temperature",
          "must be a finite number > 0.")
  require(all(math.isfinite(t) and t > 0 for t in sweep.temperature), "sweep.temperature",
          "every temperature must be a finite number > 0.")
  for field, rule_name in (("epsilon", "epsilon"), ("temperature", "softmax")):
    values = tuple(sweep[field])
    require(len(set(values)) == len(values), f"sweep.{field}", "holds a value twice.")
    require(not values or field in rule.traced, f"sweep.{field}",
            f"is read by sim.exploration = '{rule_name}' only, not "
            f"'{sim.exploration}'.")
