"""`replay` (the default): each user's logged items are the candidates, their logged labels
the outcomes; a user can run out of items (counted, never a crash)."""

import dataclasses

from gtesim.environments.packed import PackedEnvironment


@dataclasses.dataclass(frozen=True)
class Replay(PackedEnvironment):
  """See the module docstring (packed.py: the samplers and the memory)."""
