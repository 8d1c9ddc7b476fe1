"""Run a Python module under cProfile that counts the main thread's CPU time, not wall time.

``python tools/profiled.py OUT MODULE ARGS...``: the stats go to OUT when the module returns
(a daemon stopped with SIGTERM returns). Wall time would charge a coroutine for the time the
box gave to other processes between two of its steps; CPU time charges it for what it ran,
system calls included. ``tools/bench_acd.py`` uses it with ``BENCH_CPROFILE=FILE``.
"""

from __future__ import annotations

import cProfile
import runpy
import sys
import time


def main() -> None:
    out, module, *rest = sys.argv[1:]
    sys.argv = [module, *rest]
    profile = cProfile.Profile(time.thread_time)
    try:
        profile.runcall(runpy.run_module, module, run_name="__main__", alter_sys=True)
    except SystemExit:
        pass
    finally:
        profile.dump_stats(out)


if __name__ == "__main__":
    main()
