"""Name -> variant tables (designs, environments, model classes, variance methods).

A registry is looked up once, where a config is turned into the objects the code runs; no
other module asks which variant it is (the Brax / big_vision shape, STYLE.md).
"""

import difflib

from gtesim.errors import InputError


class Registry:
  """An ordered table of named entries; `get` refuses an unknown name with a did-you-mean."""

  def __init__(self, what: str, key: str):
    self._what = what  # "design", "environment", ...
    self._key = key  # The config key that names an entry, for error messages.
    self._entries = {}

  def register(self, name: str, entry):
    if name in self._entries:
      raise ValueError(f"{self._what} '{name}' is registered twice")
    self._entries[name] = entry
    return entry

  def get(self, name: str):
    if name not in self._entries:
      close = difflib.get_close_matches(str(name), list(self._entries), n=1)
      hint = f" (did you mean '{close[0]}'?)" if close else ""
      article = "an" if self._what[0] in "aeiou" else "a"
      raise InputError(f"config key {self._key}: '{name}' is not {article} {self._what}{hint}; "
                       f"use one of {', '.join(self._entries)}.")
    return self._entries[name]

  def names(self) -> tuple:
    return tuple(self._entries)

  def items(self):
    return self._entries.items()

  def __contains__(self, name) -> bool:
    return name in self._entries
