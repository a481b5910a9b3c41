"""Cost of composing a config from Python: `python benchmarks/api_compose.py`.

Prints the time of `sim.api.compose` the first time (Hydra composes the presets) and the mean of the
next calls with different lever values and a dotted override (applied to the cached composition and
checked), against `sim.cli.compose_config` (Hydra every call: what a wrapper around the command line
paid before). Issue 13's goal: the second and later calls under 10 ms.
"""

from __future__ import annotations

import time


def main(calls: int = 50) -> None:
    from sim.api import compose
    from sim.cli import compose_config

    t0 = time.perf_counter()
    compose("chongqing", training_intensity=1.0, n_agents=5000)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for k in range(calls):
        compose("chongqing", overrides=["behaviour.aptitude_sd=0.4"], training_intensity=1.0 + k / calls, n_agents=5000)
    later = (time.perf_counter() - t0) / calls
    t0 = time.perf_counter()
    for k in range(5):
        compose_config(["region=chongqing", f"levers.training.intensity={1.0 + k / 5}", "n_agents=5000"])
    hydra = (time.perf_counter() - t0) / 5
    print(f"sim.api.compose: first call {first * 1e3:.0f} ms; later calls {later * 1e3:.2f} ms each "
          f"(goal < 10 ms: {'met' if later < 0.010 else 'MISSED'}); "
          f"Hydra every call (sim.cli.compose_config): {hydra * 1e3:.0f} ms each, {hydra / later:.0f}x")


if __name__ == "__main__":
    main()
