"""Discrete-event simulation of the engine's pure core on a virtual clock (no asyncio, no I/O).

- :mod:`engine.sim.clock`: the scheduler (heap, seeded shuffle of simultaneous events, keyed
  cancellable entries);
- :mod:`engine.sim.scenario`: the scenario file (YAML, file:line errors);
- :mod:`engine.sim.acd`: Poisson callers and simulated agents driving the real ACD, measured from
  the commands it returns (warm-up excluded: see that module);
- :mod:`engine.sim.cli`: ``callcenter sim acd --scenario FILE [--json] [--seed N] [--hours H]``.
"""
