"""The registries: designs, environments, retrievals, model classes and label kinds are
resolved by name in one place each, and nothing else asks which variant it is."""

import ast
import pathlib
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gtesim import designs
from gtesim import environments
from gtesim import label_kinds
from gtesim import models
from gtesim import prng
from gtesim.config import checks
from gtesim.config import defaults
from gtesim.designs import choice_world as choice_designs
from gtesim.environments import retrieval
from gtesim.errors import InputError

REPO = pathlib.Path(__file__).resolve().parents[1]
# The modules that resolve names: the only ones allowed to compare a config value to one.
REGISTRY_MODULES = {"gtesim/designs/__init__.py", "gtesim/environments/__init__.py",
                    "gtesim/environments/retrieval.py", "gtesim/models/__init__.py",
                    "gtesim/designs/choice_world.py", "gtesim/models/counting.py"}


def _registered_names():
  return (set(designs.DESIGNS.names()) | set(environments.ENVIRONMENTS.names()) |
          set(retrieval.RETRIEVALS.names()) | set(models.MODEL_CLASSES.names()) |
          set(choice_designs.DESIGNS.names()))  # (Not the counting rankers': "random" is
  # also a log role and a switchback order.)


def _string_dispatch(path: pathlib.Path, names: set) -> list:
  """(line, source) of every comparison of something with a registered name's literal."""
  tree = ast.parse(path.read_text())
  found = []
  for node in ast.walk(tree):
    if not isinstance(node, ast.Compare):
      continue
    sides = [node.left, *node.comparators]
    literals = []
    for side in sides:
      if isinstance(side, ast.Constant):
        literals.append(side.value)
      elif isinstance(side, (ast.Tuple, ast.List, ast.Set)):
        literals += [e.value for e in side.elts if isinstance(e, ast.Constant)]
    if any(isinstance(v, str) and v in names for v in literals):
      found.append((node.lineno, ast.get_source_segment(path.read_text(), node)))
  return found


def test_no_module_outside_a_registry_compares_a_variant_name():
  names = _registered_names()
  offenders = []
  for path in sorted([*(REPO / "gtesim").rglob("*.py"), *(REPO / "scripts").rglob("*.py")]):
    rel = path.relative_to(REPO).as_posix()
    if rel in REGISTRY_MODULES:
      continue
    offenders += [f"{rel}:{line}: {src}" for line, src in _string_dispatch(path, names)]
  assert not offenders, "\n".join(offenders)


def test_the_dispatch_check_finds_a_comparison(tmp_path):
  path = tmp_path / "m.py"
  path.write_text('if config.mode == "cluster" or env in ("latent", "x"):\n  pass\n')
  assert len(_string_dispatch(path, _registered_names())) == 2
  path.write_text('if "pooling" in modes:\n  pass\nx = {"mode": "global"}\n')
  assert len(_string_dispatch(path, _registered_names())) == 1


@pytest.mark.parametrize("registry,name,hint", [
    (designs.DESIGNS, "swichback", "switchback"),
    (environments.ENVIRONMENTS, "laten", "latent"),
    (retrieval.RETRIEVALS, "popular", "popularity"),
    (models.MODEL_CLASSES, "mpl", "mlp"),
])
def test_an_unknown_name_is_refused_with_a_did_you_mean(registry, name, hint):
  with pytest.raises(InputError, match=f"'{name}' is not an? .*did you mean '{hint}'"):
    registry.get(name)


@pytest.mark.parametrize("mode", designs.MODES)
def test_every_design_builds_from_the_default_config_and_lays_out_its_worlds(mode):
  config = defaults.get_config()
  config.mode = mode
  checks.check(config)
  design = designs.make(config)
  assert design.name == mode and design.arms in (1, 2)
  points = (designs.SweepPoint(0.3, 1.0), designs.SweepPoint(0.5, 0.0))
  groups = design.layout.groups(points)
  assert len(groups) == design.layout.n_worlds(len(points)) * design.arms
  inputs = design.layout.point_inputs(points, np.ones(2), np.zeros(2))
  assert inputs.alpha.shape == (design.layout.n_worlds(len(points)), design.arms, 2)
  rep = SimpleNamespace(key=jax.random.key_data(prng.rep_key(0, 0)), designs={})
  if not design.data_pieces:  # Its assignment needs no set-up: Z of three users at p = 1.
    z = np.asarray(design.assignment.assign(rep, jnp.arange(3), jax.random.key(0), 1.0, 0))
    assert z.dtype == bool and z.all()
  assert set(design.unit.fields) >= ({"user_var"} if design.arms == 2 else set())
  assert all(m.startswith("weight/") for m in design.reporting.step_metrics)
  assert (mode in designs.AB_DESIGNS) == (design.arms == 2)


def test_the_registered_variants_are_the_configs_choices():
  assert designs.MODES == ("global", "pooling", "splitting", "snapshot", "weighting",
                           "codiverted", "cluster", "switchback")
  assert environments.ENVIRONMENTS.names() == ("replay", "matrix", "latent")
  assert retrieval.RETRIEVALS.names() == ("uniform", "popularity")
  assert environments.OUTCOMES == ("sampled", "expected")
  assert set(label_kinds.KINDS) == {"binary", "numerical"}
  config = defaults.get_config()
  config.sim.environment = "matrx"
  with pytest.raises(InputError, match="sim.environment: 'matrx': use one of replay, matrix, "
                     "latent"):
    checks.check(config)
