"""`skillsim-explore [--port 8765] [--host 127.0.0.1] [--cache-dir DIR]`: serve the explorer on localhost.

The server is Solara's (uvicorn), run with no network use: telemetry off, no version check, every
script and style from the installed `solara-assets` package (no CDN), the browser not opened. It
writes nothing outside its cache folder: every library that writes files (matplotlib's font cache,
numba's compiled functions, joblib's memory maps, temporary files, Solara's home) is pointed into it
before it is imported."""

from __future__ import annotations

import argparse
import errno
import os
import socket
import sys
import tempfile
from pathlib import Path

from .engine import END_YEARS, MAX_REPLICATES, REGIONS, View
from ..errors import one_line_errors, quiet_when_output_closed

VIEW_ENV = "SKILLSIM_EXPLORE_VIEW"  # read by sim.explorer.app (kept free of web imports here)

DEFAULT_PORT = 8765

# variables of the libraries that write files -> their folder in the cache folder (a value the user
# set is kept); the joblib workers inherit them. Not SOLARA_ASSETS_PROXY_CACHE_DIR: its default,
# sys.prefix/share/solara/cdn, is where solara-assets installed the page's scripts and styles (read
# only, not written), and pointing it elsewhere leaves the page without them.
CACHE_ENV = {"MPLCONFIGDIR": "matplotlib", "NUMBA_CACHE_DIR": "numba", "JOBLIB_TEMP_FOLDER": "joblib",
             "SKILLSIM_CACHE_DIR": "skillsim",  # skillsim's shared histories and composed configs (an empty value: off)
             "TMPDIR": "tmp", "SOLARA_HOME": "solara", "IPYTHONDIR": "ipython",
             "JUPYTER_RUNTIME_DIR": "jupyter-runtime"}


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/skillsim/explorer, or ~/.cache/skillsim/explorer (the XDG default)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "skillsim" / "explorer"


def parse(argv: list[str]) -> argparse.Namespace:
    p = one_line_errors(argparse.ArgumentParser(prog="skillsim-explore", description="The skillsim explorer in the "
                                                "browser: lever sliders, a live fan chart against the status quo, costs."))
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--region", choices=REGIONS, default=View.region, help="first view: region")
    p.add_argument("--n-agents", type=int, default=View.n_agents, help=f"first view: agents (default {View.n_agents})")
    p.add_argument("--replicates", type=int, default=View.replicates,
                   help=f"first view: replicates (default {View.replicates})")
    p.add_argument("--end-year", type=int, default=View.end_year, help=f"first view: last year (default {View.end_year})")
    p.add_argument("--cache-dir", type=Path, default=None, help="the only folder the server writes to "
                   "(default $XDG_CACHE_HOME/skillsim/explorer or ~/.cache/skillsim/explorer)")
    args = p.parse_args(argv)
    args.cache_dir = (args.cache_dir or default_cache_dir()).expanduser().resolve()
    try:
        args.cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        p.exit(2, f"skillsim-explore: --cache-dir {args.cache_dir} cannot be created ({exc.strerror}); "
                  "allowed: a folder you can write to\n")
    if args.n_agents < 1:  # the page's box takes any whole number from 1 (a user trial: this said 100, "the slider")
        p.exit(2, f"skillsim-explore: --n-agents {args.n_agents} is invalid; allowed: a whole number of agents, at "
                  "least 1\n")
    if not 1 <= args.replicates <= MAX_REPLICATES:
        p.exit(2, f"skillsim-explore: --replicates {args.replicates} is invalid; allowed: 1-{MAX_REPLICATES} (the "
                  "page's slider)\n")
    if not END_YEARS[0] <= args.end_year <= END_YEARS[1]:  # the page would move it to its slider's end
        p.exit(2, f"skillsim-explore: --end-year {args.end_year} is invalid; allowed: {END_YEARS[0]}-{END_YEARS[1]} "
                  "(the page's slider)\n")
    if not 0 < args.port < 65536:
        p.exit(2, f"skillsim-explore: --port {args.port} is invalid; allowed: 1-65535\n")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((args.host, args.port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                p.exit(2, f"skillsim-explore: --port {args.port} on {args.host} is not free ({exc.strerror}); "
                          f"allowed: a free port, e.g. --port {args.port + 1}\n")
            p.exit(2, f"skillsim-explore: --host {args.host} cannot be listened on here ({exc.strerror}); "  # unknown
                      "allowed: an address of this machine, e.g. 127.0.0.1 (this machine only) or 0.0.0.0\n")
    return args


def offline_environment() -> None:
    os.environ["SOLARA_TELEMETRY_MIXPANEL_ENABLE"] = "False"
    os.environ.setdefault("SOLARA_CHECK_VERSION", "False")
    # the page's title before its script runs (and sets its own, in the page's language): Solara's was its own
    os.environ.setdefault("SOLARA_THEME_TITLE", "skillsim explorer")
    quiet_cookie_warning()


#: the start of Solara's warning on every page load by a name other than localhost (127.0.0.1, the
#: machine's name on a network): twelve lines about embedding the page in an iframe over https, which the
#: explorer never is (a user trial); its session cookie falls back to SameSite=lax, which a page opened
#: directly needs
COOKIE_WARNING = "Cookies with samesite=none require https"


def quiet_cookie_warning() -> None:
    import warnings

    warnings.filterwarnings("ignore", message=COOKIE_WARNING, category=UserWarning)


def use_cache_dir(cache_dir: Path) -> None:
    """Point every library that writes files at a folder of `cache_dir` (unless the user set its
    variable): called before any of them is imported, since most read their variable at import."""
    for var, sub in CACHE_ENV.items():
        if not os.environ.get(var) and not (var == "SKILLSIM_CACHE_DIR" and var in os.environ):  # "" turns it off
            (cache_dir / sub).mkdir(parents=True, exist_ok=True)
            os.environ[var] = str(cache_dir / sub)
            if var == "TMPDIR":
                tempfile.tempdir = os.environ[var]  # tempfile may have read TMPDIR already


def setup(args: argparse.Namespace) -> None:
    """Everything before the server starts: no network, the cache folder, the first view."""
    import json

    offline_environment()
    use_cache_dir(args.cache_dir)
    refuse_a_first_view_too_big(args)
    os.environ[VIEW_ENV] = json.dumps({"region": args.region, "n_agents": args.n_agents,
                                       "replicates": args.replicates, "end_year": args.end_year})


def refuse_a_first_view_too_big(args: argparse.Namespace) -> None:
    """--n-agents beyond the explorer's memory limit started the server, whose page then refused it (a
    user trial): refused here, in one line, as the other first-view values are (after use_cache_dir:
    composing the view's config is the first thing that may write a cache)."""
    from ..errors import ConfigError
    from .engine import TooBig, check

    try:
        check(View(region=args.region, n_agents=args.n_agents, replicates=args.replicates, end_year=args.end_year))
    except TooBig as exc:
        print(f"skillsim-explore: --n-agents {args.n_agents} is invalid; allowed: {exc.allowed}", file=sys.stderr)
        raise SystemExit(2) from None
    except ConfigError as exc:  # the config's own limits (memory) on the first view: a traceback before
        flag = "--n-agents" if exc.field == "n_agents" else exc.field
        print(f"skillsim-explore: {flag} {exc.value} is invalid; allowed: {exc.allowed}", file=sys.stderr)
        raise SystemExit(2) from None


def page_url(host: str, port: int) -> str:
    """The address to open. On this machine it is named `localhost`: Solara's session cookie is set
    for that name only, and a page opened at 127.0.0.1 makes it warn about cookies on every load."""
    if host in ("127.0.0.1", "localhost", "::1"):
        host = "localhost"
    elif ":" in host:
        host = f"[{host}]"  # an IPv6 address in a URL
    return f"http://{host}:{port}/"


@quiet_when_output_closed
def main(argv: list[str] | None = None) -> None:
    args = parse(list(sys.argv[1:] if argv is None else argv))
    setup(args)
    from solara.__main__ import cli

    print(f"skillsim-explore: cache folder {args.cache_dir}", file=sys.stderr, flush=True)
    print(f"skillsim-explore: serving on {page_url(args.host, args.port)} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    try:
        cli.main(["run", "sim.explorer.app", "--host", args.host, "--port", str(args.port), "--no-open",
                  "--no-check-version", "--production", "--log-level", "warning"], standalone_mode=False)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
