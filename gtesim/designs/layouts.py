"""How a design's worlds are laid out on the host: how many per sweep point, their arms and
names, their traced inputs, which ranker each arm runs, and result.json's block and log line of
a point. A design declares one (`Design.layout`): global mode's or an A/B design's."""

import dataclasses
import math

import numpy as np

from gtesim.core.scoring import CONTROL, TREATMENT
from gtesim.core.state import Point
from gtesim.designs.worlds import exploration_inputs
from gtesim.stats import descriptive
from gtesim.stats import estimators
from gtesim.stats import points as points_lib


def alpha_at_gap(alpha_t, alpha_c, gap):
  """alpha_T(lambda) = (1 - lambda) alpha_C + lambda alpha_T: lambda = 0 is the A/A."""
  return (1.0 - gap) * alpha_c + gap * alpha_t


@dataclasses.dataclass(frozen=True)
class GlobalLayout:
  """A GT world at every sweep point (treatment alphas at that alpha gap) and one GC world
  shared by every point (alpha_C does not depend on the gap); one arm each."""

  def n_worlds(self, n_points: int) -> int:
    return n_points + 1

  def groups(self, points) -> list:
    """(world, arm, point, name) of every world x arm (a point of -1: every point)."""
    return [(s, 0, s, "GT") for s in range(len(points))] + [(len(points), 0, -1, "GC")]

  def world_rankers(self, n_points: int, arm_ranker: tuple) -> list:
    """Per world, the ranker index of each of its arms (arm_ranker: the treatment's and the
    control's, models.rankers): GT worlds run the treatment's, GC the control's."""
    return [(arm_ranker[TREATMENT],)] * n_points + [(arm_ranker[CONTROL],)]

  def point_inputs(self, points, alpha_t, alpha_c) -> Point:
    """The traced inputs of every world, stacked [W]; alpha_t/alpha_c: [L] numpy arrays."""
    alpha_t, alpha_c = np.asarray(alpha_t, np.float32), np.asarray(alpha_c, np.float32)
    p = [q.p_treatment for q in points]
    alpha = [alpha_at_gap(alpha_t, alpha_c, q.alpha_gap)[None] for q in points]
    alpha.append(alpha_c[None])
    p.append(0.5)  # GC's p: unused, every user of a global world has its policy.
    # GC explores like the GT worlds (global mode refuses a swept exploration).
    return Point(np.asarray(p, np.float32), np.stack(alpha).astype(np.float32),
                 **exploration_inputs(tuple(points) + points[:1]))

  def point_name(self, points, point: int) -> str:
    """A sweep point's label in result.json's keys: "" when the run has one point."""
    if len(points) == 1 or point < 0:
      return ""
    return f"[gap={points[point].alpha_gap:g}]"

  def point_result(self, labels, history, worlds, point: int, config) -> dict:
    """result.json's block of one point: the global truth."""
    del config
    return points_lib.truth_block(labels, history, worlds, point)

  def log_point(self, log, name, swept: bool, point, config) -> None:
    """The `[result]` line of one label at one point (`swept`: the run has several)."""
    g = point["gte"][name]
    log.info("%s%s: GT %s, GC %s, GTE %s +- %s (sd %s over %d repetitions, %s%%)", name,
             f" at gap {point['alpha_gap']:g}" if swept else "", _g(point["gt"][name]["mean"], 6),
             _g(point["gc"][name]["mean"], 6), _g(g["mean"], 6), _g(g["se"]), _g(g["std"]),
             config.repetitions, _g(g["pct_mean"], 4))


@dataclasses.dataclass(frozen=True)
class ABLayout:
  """One world per sweep point with two arms, treatment (0) and control (1)."""

  def n_worlds(self, n_points: int) -> int:
    return n_points

  def groups(self, points) -> list:
    return [(s, a, s, name) for s in range(len(points)) for a, name in enumerate("TC")]

  def world_rankers(self, n_points: int, arm_ranker: tuple) -> list:
    return [tuple(arm_ranker)] * n_points

  def point_inputs(self, points, alpha_t, alpha_c) -> Point:
    alpha_t, alpha_c = np.asarray(alpha_t, np.float32), np.asarray(alpha_c, np.float32)
    p = [q.p_treatment for q in points]
    alpha = [np.stack([alpha_at_gap(alpha_t, alpha_c, q.alpha_gap), alpha_c]) for q in points]
    return Point(np.asarray(p, np.float32), np.stack(alpha).astype(np.float32),
                 **exploration_inputs(points))

  def point_name(self, points, point: int) -> str:
    if len(points) == 1 or point < 0:
      return ""
    q = points[point]
    name = f"[p={q.p_treatment:g},gap={q.alpha_gap:g}"
    if len({r.epsilon for r in points}) > 1:
      name += f",eps={q.epsilon:g}"
    if len({r.temperature for r in points}) > 1:
      name += f",tau={q.temperature:g}"
    return name + "]"

  def point_result(self, labels, history, worlds, point: int, config) -> dict:
    """result.json's block of one point: the difference in means (`gte`) and every estimator
    of estimator.names (`estimators`)."""
    extra, _ = estimators.applicable(config, worlds.design, worlds.points)
    return points_lib.estimate_block(labels, history, worlds, point,
                                     config.estimator.batch_blocks, extra)

  def log_point(self, log, name, swept: bool, point, config) -> None:
    g = point["gte"][name]
    half = {m: _finite_mean(v) for m, v in g["se_per_rep"].items()}
    log.info("%s%s: %s estimate %s (sd %s over %d repetitions; mean 95%% CI half-width %s)",
             name, f" at p={point['p_treatment']:g}, gap {point['alpha_gap']:g}"
             + "".join(f", {f} {point[f]:g}" for f in ("epsilon", "temperature") if f in point)
             if swept else "",
             config.mode, _g(g["mean"], 6), _g(g["std"]), config.repetitions, ", ".join(
                 f"{m} {_g(None if v is None else 1.96 * v)}" for m, v in half.items()))


def _finite_mean(values):
  """Mean of the finite values; None (JSON null) if there are none."""
  mean = float(descriptive.finite_mean(values))
  return mean if math.isfinite(mean) else None


def _g(x, digits=2) -> str:
  """A number for a log line; "undefined" for None/NaN (e.g. an sd over one repetition)."""
  return "undefined" if x is None or not math.isfinite(x) else f"{x:.{digits}g}"
