"""The documentation a newcomer reads: the README's size and links, every config key listed."""

import pathlib
import re

import ml_collections

from gtesim.config import defaults

REPO = pathlib.Path(__file__).resolve().parents[1]


def _keys(config, prefix=""):
  for key in config.keys():
    value = config[key]
    path = f"{prefix}{key}"
    if path == "labels":
      yield from (f"labels.<name>.{k}" for k in defaults.flat_keys(next(iter(value.values()))))
    elif path in ("arms.treatment.labels", "arms.control.labels"):
      yield from (f"arms.<arm>.labels.<name>.{k}"
                  for k in defaults.flat_keys(next(iter(value.values()))))
    elif path == "experiment.weighting.g":  # A model section: documented once, as a label's.
      yield path
    elif path == "data.features":
      yield from (f"data.features.<table>.{k}" for k in next(iter(value.values())).keys())
    elif isinstance(value, ml_collections.ConfigDict):
      yield from _keys(value, f"{path}.")
    else:
      yield path


def test_every_config_key_is_in_the_configuration_page():
  config = defaults.get_config()
  with config.unlocked():
    config.study = defaults.study_section()
    config.advise = defaults.advise_section()
  page = (REPO / "docs" / "configuration.md").read_text()
  missing = [k for k in _keys(config) if f"`{k}`" not in page]
  assert not missing, missing


def test_the_readme_is_short_and_its_links_exist():
  readme = (REPO / "README.md").read_text()
  assert len(readme.encode()) <= 12 * 1024
  links = re.findall(r"\]\(([^)#]+)\)", readme)
  assert any(l.startswith("docs/") for l in links)
  for link in links:
    assert (REPO / link).exists(), link
  for page in (REPO / "docs").glob("*.md"):  # Every page is reachable from the README.
    assert f"docs/{page.name}" in readme, page.name
    for link in re.findall(r"\]\(([^)#:]+)\)", page.read_text()):
      assert (page.parent / link).exists(), (page.name, link)
