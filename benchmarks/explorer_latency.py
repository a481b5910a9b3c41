"""How long the explorer takes to show a first answer after a lever moves (issue 16: within 2 s on
2 cores), and to finish the view at its default size.

    python benchmarks/explorer_latency.py

In one warm process, as the server is: the view changes (training 1.5, 2.0, 2.5, ...) and the time
to the first update (the first look, sim.explorer.engine.FIRST_AGENTS agents x 2 replicates) and to
the final one (the default View: 20,000 agents x 8 replicates) are printed, with their medians. Each
update is timed until its charts are drawn and encoded as the PNGs the page shows (the page's own
`shown_charts`), not only until its numbers exist."""

from __future__ import annotations

import statistics
import time

from sim.explorer.app import shown_charts
from sim.explorer.engine import FIRST_AGENTS, View, compute


def drawn(result) -> None:
    """What the page does with an update: every chart drawn and encoded."""
    shown_charts(result, "en")


def main() -> None:
    compute(View(n_agents=FIRST_AGENTS + 1, replicates=1, end_year=2026), lambda r, t: drawn(r))  # warm: imports, pool
    firsts, finals = [], []
    for training in (1.5, 2.0, 2.5):
        view = View(training=training)
        t0 = time.perf_counter()
        seen: list[float] = []
        compute(view, lambda r, t: (drawn(r), seen.append(time.perf_counter() - t0)))
        firsts.append(seen[0])
        finals.append(seen[-1])
        print(f"training {training}: first answer {seen[0]:.2f} s, final ({view.n_agents:,} agents x "
              f"{view.replicates} {view.over}s) {seen[-1]:.1f} s")
    print(f"median: first answer {statistics.median(firsts):.2f} s (target <= 2 s), final "
          f"{statistics.median(finals):.1f} s")


if __name__ == "__main__":
    main()
