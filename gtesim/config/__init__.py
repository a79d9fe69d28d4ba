"""The configuration: defaults (every number the simulator uses) and the checks of a config."""
