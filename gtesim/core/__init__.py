"""The pure core: typed pytrees and jit-able functions of one repetition (no host work).

`simulation.make_simulation(config, setup)` returns the per-repetition functions (init,
pretrain_epoch, start, chunk, evaluate); `mapping.compile_simulation` maps them over the
repetition axis and compiles them. The host driver (gtesim.driver), the study, bench.py and
the tests call those.
"""
