"""key=value options of the study commands (skillsim-forecast, -plan, -sensitivity, -discover): each value checked
with a one-line error naming the key, the value and what is allowed."""

from __future__ import annotations

import atexit
import functools
import math
import re
from pathlib import Path

from ..errors import ConfigError


def key_values(argv: list[str], usage: str, prog: str) -> list[tuple[str, str]]:
    """The command's key=value arguments; --help prints `usage` and exits 0, a bare word is one line.
    `--config-dir DIR` adds a folder of the user's own presets, as for skillsim (its search path)."""
    if any(a in ("-h", "--help") for a in argv):
        print(usage)
        raise SystemExit(0)
    from ..cli import _flag_value, _with_config_dir

    given = list(argv)
    folder, argv = _flag_value(given, ("--config-dir", "-cd"))
    if folder is not None and (not folder.strip() or not Path(folder).expanduser().is_dir()):
        raise ConfigError("--config-dir", folder, "an existing folder laid out like sim/conf "
                          "(for example my_conf/region/my_city.yaml)")
    from ..errors import given_once

    argv = given_once(argv)  # a value said to be dropped is not checked either
    pairs = []
    for n, a in enumerate(argv):
        key, sep, value = a.partition("=")
        if not sep:
            # `region chongqing`: "region = '' is invalid" named a value the user never gave; the two words
            # as one key=value, if a word follows (`chongqing` alone suggested chongqing=VALUE)
            after = argv[n + 1] if n + 1 < len(argv) and "=" not in argv[n + 1] else None
            example = f"{a.lstrip('-')}={after}" if after and a.lstrip("-") else "KEY=VALUE"
            raise ConfigError("argument", a, f"key=value arguments, such as {example} (see {prog} --help)")
        if key.startswith("-"):  # --samples=4: Hydra's parser named a lexer error
            raise ConfigError(key, value, f"key=value arguments without dashes: {key.lstrip('-')}={value} "
                              f"(see {prog} --help)")
        pairs.append((key, value))
    if folder is not None:  # the search path skillsim builds for the same flag (quoted, merged with a given one)
        *_, line = _with_config_dir(given, [f"{k}={v}" for k, v in pairs if k == "hydra.searchpath"])
        pairs = [p for p in pairs if p[0] != "hydra.searchpath"] + [tuple(line.split("=", 1))]
    return pairs


def number(key: str, value: str, lo: float | None = None, hi: float | None = None, kind=float,
           allowed: str | None = None):
    """`value` as a `kind` in [lo, hi]; `allowed`: what the error says is allowed, where the range's
    words would not say it (an open interval)."""
    try:
        v = kind(value)
    except ValueError:
        raise ConfigError(key, value, allowed or ("an integer" if kind is int else "a number")) from None
    if (lo is not None and v < lo) or (hi is not None and v > hi) or (kind is float and not math.isfinite(v)):
        raise ConfigError(key, v, allowed or (f"a number in [{lo}, {hi}]" if hi is not None else f"a number >= {lo}"))
    return v


def boolean(key: str, value: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise ConfigError(key, value, "true or false")
    return value.lower() == "true"


def one_of(key: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(key, value, "one of " + ", ".join(allowed))
    return value


#: `inputs=none`: no group's inputs, only those given one by one (input.KEY=LO:HI, an inputs file's)
NO_GROUPS = "none"


def groups(key: str, value: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """A comma list of input groups; `none` (or an empty list in an inputs file) chooses none of them."""
    if value.strip().lower() == NO_GROUPS:
        return ()
    names = tuple(n for n in value.split(",") if n)
    bad = [n for n in names if n not in allowed]
    if bad or not names:
        raise ConfigError(key, value, "a comma list of " + ", ".join(allowed) + f", or {NO_GROUPS} (only the "
                          "inputs given one by one: input.KEY=LO:HI or an inputs file's)")
    return names


def path_option(key: str, value: str) -> str:
    """A path given as key=PATH; an empty one (`out=`) silently meant the default folder."""
    if not value.strip():
        raise ConfigError(key, value, "a path (leave out= out for the default folder)")
    return value


def study_option(key: str, value: str, opts: dict, extra: list[tuple[str, str]], groups_allowed: tuple[str, ...]) -> bool:
    """The options every study over inputs shares (sensitivity, discover): n_agents, inputs, quick,
    out and input.KEY=LO:HI; True if `key` was one of them."""
    if key == "n_agents":
        opts[key] = number(key, value, 100, 10_000_000, int)
    elif key == "inputs":
        opts[key] = ",".join(groups(key, value, groups_allowed)) or NO_GROUPS
    elif key == "quick":
        opts[key] = boolean(key, value)
    elif key == "out":
        opts[key] = path_option(key, value)
    elif key.startswith("input."):
        extra.append((key, value))
    else:
        return False
    return True


def config_override(key: str, value: str, prog: str, options=(), sets: tuple[str, ...] = ("replicate",)) -> str:
    """`key=value` for the study's runs' config (checked by the composition, which names an unknown
    key), after refusing what would be recorded and do nothing: the keys the study sets run by run
    (`sets`: every study its replicates; the forecast its joint draws too, while sensitivity and
    discovery study the inputs around `draw=N`'s values) and Hydra's job settings (a study runs no
    Hydra job; hydra.searchpath, which --config-dir sets, is read). An option of the command spelt
    with _ for . (target_share) is named as that option, not as an unknown config key or a missing
    option."""
    bare = key.lstrip("+~")
    if bare in sets:
        raise ConfigError(key, value, f"not a setting here: {prog} sets {bare} itself, run by run "
                          f"(see {prog} --help for its own options)")
    if bare.split(".")[0] == "hydra" and bare != "hydra.searchpath":
        raise ConfigError(key, value, f"not a setting here: {prog} runs no Hydra job (its folder is out=; "
                          "presets of your own: --config-dir DIR)")
    spelt = {o.replace(".", "_"): o for o in options if "." in o}
    if key in spelt:
        raise ConfigError(key, value, f"an option of {prog}: {spelt[key]}=...")
    near = sorted(o for o in options if "." in o and o.split(".")[0] == bare.split(".")[0])
    if near:  # target.shar: no config key starts so; it read as "target.share is not set", not naming this one
        raise ConfigError(key, value, f"an option of {prog}: {' or '.join(f'{o}=...' for o in near)} (check its spelling)")
    meant = _meant(bare, options)
    if meant:  # param=2: "unknown key 'param'" named neither the option nor the key meant
        raise ConfigError(key, value, f"{meant} (check its spelling; see {prog} --help)")
    return f"{key}={value}"


def _meant(bare: str, options) -> str | None:
    """What a key that is neither an option nor a setting most likely meant: `an option of PROG: params=...`
    or `a config key: region.base_wage=...`; None for a key of the schema, a group choice or a key
    nothing is close to (the composition then names it)."""
    import difflib

    from ..config import setting_names

    names = setting_names()
    leaves = set(names) - {n.rsplit(".", 1)[0] for n in names if "." in n}  # settings, not nodes of settings
    if (bare in names or bare in options or any(bare.startswith(n + ".") for n in leaves)  # a mapping's entry
            or ("." in bare and bare.split(".")[0] not in {n.split(".")[0] for n in names})):
        return None
    option = difflib.get_close_matches(bare, [o for o in options if o not in names], n=1, cutoff=0.8)
    if option:
        return f"an option: {option[0]}=..."
    key = difflib.get_close_matches(bare, names, n=1, cutoff=0.85)
    return f"a config key: {key[0]}=..." if key else None


def run_command(func, prog: str, argv: list[str] | None, what: str = "folder", resumable: bool = True) -> None:
    """Run a study command: a user's mistake is one line with its exit code; Ctrl-C or SIGTERM is exit
    130 with nothing half-written (a resumable study keeps its finished runs in its journal)."""
    import signal
    import sys

    from ..errors import SkillsimError, stop_on_signal
    from .batch import recording

    argv = list(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, stop_on_signal)
    try:
        with recording():  # how the study's runs ran, for its manifest (sim.studies.batch.Execution)
            func(argv)
    except SkillsimError as err:
        from ..cli import UNKNOWN_KEY_HINT  # an unknown key may be a misspelt option of this command

        text = re.sub(r"did you mean \S+\? ", "", str(err))  # a config key's near name: it may be an option's typo
        text = text.replace(UNKNOWN_KEY_HINT, f"it is neither an option of {prog} (see {prog} --help) "
                                              "nor a config key (see `skillsim --cfg job`)")
        print(f"{prog}: {text}", file=sys.stderr)
        raise SystemExit(err.exit_code) from None
    except OSError as exc:  # the disk or the folder's permissions: one line naming the path (sim.errors)
        from ..errors import environment_fault

        err = environment_fault(exc, exc.filename or f"the {what}")
        print(f"{prog}: {err}", file=sys.stderr)
        raise SystemExit(err.exit_code) from None
    except (KeyboardInterrupt, Exception) as exc:  # noqa: BLE001 - one line for anything, as skillsim's own
        from ..errors import (EXIT_INTERNAL, EXIT_PARTIAL, WORKER_KILLED, caused_by_interrupt, debug_enabled,
                              internal_error, worker_killed)

        if caused_by_interrupt(exc):  # Ctrl-C, or what a library raised over it (numba while compiling)
            kept = ("; the runs finished so far are kept: re-run the same command (same out=) to resume"
                    if resumable else "")
            print(f"{prog}: interrupted; no {what} was written{kept}", file=sys.stderr)
            raise SystemExit(130) from None
        if worker_killed(exc):  # one of the study's pool processes: not a bug
            kept = ("; the runs finished so far are kept: re-run the same command (same out=) to resume"
                    if resumable else "")
            print(f"{prog}: {WORKER_KILLED}; no {what} was written{kept}", file=sys.stderr)
            raise SystemExit(EXIT_PARTIAL) from None
        if debug_enabled():
            raise
        print(f"{prog}: {internal_error(exc)}", file=sys.stderr)  # was a raw traceback
        raise SystemExit(EXIT_INTERNAL) from None


def check_writable(out: Path, what: str = "study", unique: bool = False) -> Path:
    """The folder the study will write, claimed for it: fail now, in one line, if `out` holds anything
    (forecast.refuse_existing), cannot be written (its parent is made if missing), or another live
    process is running a study into it; before a study's runs, which would otherwise be lost when it
    writes its folder at the end. The claim on `out` (sim.claims, as a single run claims its folder) is
    held until the study ends (its `run` releases it, `releases_claims`): two identical commands into
    one out= both ran every run, sharing one journal, and the second then found the folder written.
    `unique`: out= was not given, so a default name taken meanwhile (a study started in the same
    second) gives this one the next free name, NAME-2, NAME-3, ..., as single runs do."""
    import tempfile

    from .. import claims
    from ..errors import BusyError, OutputError, environment_fault
    from .forecast import refuse_existing, refuse_file_above

    base = Path(out)
    from ..results import refuse_inside_results

    refuse_inside_results(base, "out")  # a study written inside a finished folder broke its verification
    refuse_file_above(base, what)  # every free name shares its parent: not a reason to try the next
    probed: list[Path] = []

    def free(path: Path) -> bool:
        try:
            refuse_existing(path, what)
        except OutputError:
            if unique:
                return False
            raise
        if not probed:  # the parent made and written to once, before the first claim
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.probe-"):
                pass
            probed.append(path)
        return True

    try:
        held, out = claims.claim_free_name(base, unique, free)
    except OSError as exc:
        raise environment_fault(exc, out) from None
    if held is None:
        if unique:
            raise BusyError(f"{base}: a thousand studies started in the same second hold its default names; "
                            "give out=")
        raise BusyError(f"{out} is being written by {claims.holder(out, patience=0.5) or 'another process'}, a study "
                        "running into the same out=; wait for it to finish, or choose another out=")
    _CLAIMS.append(held)
    from ..results import remove_dead_partials, remove_killed_partials

    if held.previous is not None:  # a study into this out= was killed while writing, as a single run can be
        remove_dead_partials(out)
    remove_killed_partials(out.parent)  # those of studies killed under other (default) names
    return out


_CLAIMS: list = []  # the study folders this process holds (check_writable), released when their study ends


def release_claims(keep: int = 0) -> None:
    """Release the claims check_writable took, all but the first `keep`."""
    while len(_CLAIMS) > keep:
        _CLAIMS.pop().release()


def releases_claims(func):
    """A study's `run`: the claims it takes on its folders are released when it returns or raises (an
    interrupted study re-run in the same process, as a notebook does, is not refused as busy)."""
    @functools.wraps(func)
    def run(*args, **kwargs):
        held = len(_CLAIMS)
        try:
            return func(*args, **kwargs)
        finally:
            release_claims(held)
    return run


atexit.register(release_claims)  # and whatever is left when the process ends
