"""`skillsim-explore [--port 8765] [--host 127.0.0.1]`: serve the explorer on localhost.

The server is Solara's (uvicorn), run with no network use: telemetry off, no version check, every
script and style from the installed `solara-assets` package (no CDN), the browser not opened."""

from __future__ import annotations

import argparse
import os
import socket
import sys

from .engine import REGIONS, View

VIEW_ENV = "SKILLSIM_EXPLORE_VIEW"  # read by sim.explorer.app (kept free of web imports here)

DEFAULT_PORT = 8765


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="skillsim-explore", description="The skillsim explorer in the browser: lever "
                                "sliders, a live fan chart against the status quo, costs.")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--region", choices=REGIONS, default=View.region, help="first view: region")
    p.add_argument("--n-agents", type=int, default=View.n_agents, help=f"first view: agents (default {View.n_agents})")
    p.add_argument("--replicates", type=int, default=View.replicates,
                   help=f"first view: replicates (default {View.replicates})")
    p.add_argument("--end-year", type=int, default=View.end_year, help=f"first view: last year (default {View.end_year})")
    args = p.parse_args(argv)
    if args.n_agents < 100 or args.replicates < 1:
        p.exit(2, f"skillsim-explore: --n-agents {args.n_agents} / --replicates {args.replicates} is invalid; "
                  "allowed: at least 100 agents and 1 replicate\n")
    if not 0 < args.port < 65536:
        p.exit(2, f"skillsim-explore: --port {args.port} is invalid; allowed: 1-65535\n")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((args.host, args.port))
        except OSError as exc:
            p.exit(2, f"skillsim-explore: --port {args.port} on {args.host} is not free ({exc.strerror}); "
                      f"allowed: a free port, e.g. --port {args.port + 1}\n")
    return args


def offline_environment() -> None:
    os.environ["SOLARA_TELEMETRY_MIXPANEL_ENABLE"] = "False"
    os.environ.setdefault("SOLARA_CHECK_VERSION", "False")


def main(argv: list[str] | None = None) -> None:
    import json

    args = parse(list(sys.argv[1:] if argv is None else argv))
    offline_environment()
    os.environ[VIEW_ENV] = json.dumps({"region": args.region, "n_agents": args.n_agents,
                                       "replicates": args.replicates, "end_year": args.end_year})
    from solara.__main__ import cli

    print(f"skillsim-explore: serving on http://{args.host}:{args.port}/ (Ctrl-C to stop)", file=sys.stderr, flush=True)
    try:
        cli.main(["run", "sim.explorer.app", "--host", args.host, "--port", str(args.port), "--no-open",
                  "--no-check-version", "--production", "--log-level", "warning"], standalone_mode=False)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
