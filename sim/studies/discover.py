"""`skillsim-discover`: scenario discovery. Under which input conditions does a condition on the
outcomes (a missed target) mostly hold?

    skillsim-discover region=chongqing condition="high_skill_share@2030<0.35"

The inputs and their ranges are those of skillsim-sensitivity (sim.studies.inputs; `inputs=`,
`input.KEY=LO:HI`, `inputs_file=PATH`). A Latin hypercube
of `n` points (scipy.stats.qmc) runs `replicates` times each (replicate seeds shared by every point);
every run is one case. The condition is `NAME OP VALUE` with OP one of < <= > >=, where NAME is an
output in December of a year (`high_skill_share@2030`, `income_mean@2035`, `income_median@2030`,
`cost@2030`) or an input (`levers.training.intensity`), and conditions may be joined with `&`.

PRIM (Friedman and Fisher 1999), from EMA Workbench (the maintained implementation, used as a library:
peeling `peel_alpha` of the cases at a time down to `mass_min` of them), finds boxes of inputs where the
condition's cases are dense. The chosen box is the one on the peeling trajectory with the highest
coverage (share of all cases of interest inside it) among those with density (share of the cases
inside it that are of interest) at least `threshold`; then the highest density. If no box reaches the
threshold, the densest box on the trajectory is chosen (then the highest coverage), and choice.json
says so (`threshold_met: false`). Its restricted inputs come with PRIM's quasi-p-values. The box's
density is counted on the cases it was chosen on, so choice.json also gives its statistics on held-out
cases (`held_out`, 4-fold cross-validation by point) and those of its significant restrictions alone
(`significant_only`), and its sentence says both. The default
`mass_min` of 0.02 lets PRIM reach boxes of about 2% of the input space (two of three levers below 0.5
of 0-3 is 2.8%); a larger one stops the peeling before such a box.

The points run `CHUNK` at a time, with a progress line per chunk; every finished chunk is journalled,
so an interrupted study re-run with the same out= runs only what is missing.

Output folder (atomic, manifest.json and COMPLETE, resumable from its journal): design.csv (every
case: inputs, replicate, outputs, `of_interest`), trajectory.csv (coverage, density, mass and number
of restricted inputs at each peeling step), box.csv (each input's range in the chosen box against its
full range, restricted or not, quasi-p-value), choice.json (the box and its statistics, said plainly),
config.yaml. `skillsim-report` draws the trade-off curve and the box.
"""

from __future__ import annotations

import re
import sys
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import to_dict
from ..errors import ConfigError, quiet_when_output_closed
from .batch import CHUNK, evaluate_in_chunks
from .inputs import ALL_GROUPS, Input
from .options import config_override, key_values, number, releases_claims, run_command, study_option

OPTIONS = {"condition": None, "n": 1024, "replicates": 1, "threshold": 0.8, "peel_alpha": 0.05, "mass_min": 0.02,
           "inputs": None, "inputs_file": None, "n_agents": 10000, "quick": False, "out": None}
FOLDS = 4  #: folds of the cross-validation that judges the box on cases it was not found from (held_out)
OPS = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}
TERM = re.compile(r"^\s*([A-Za-z_][\w.]*(?:@\d{4})?)\s*(<=|>=|<|>)\s*([-+0-9.eE]+)\s*$")
USAGE = """usage: skillsim-discover condition="high_skill_share@2030<0.35" [region=NAME] [n=1024] [replicates=1]
                         [year=Y] [threshold=0.8] [peel_alpha=0.05] [mass_min=0.02]
                         [inputs=parameters,structural,levers|assumptions] [inputs_file=PATH] [input.KEY=LO:HI ...]
                         [n_agents=10000] [quick=true] [out=DIR] [OVERRIDE ...]

The boxes of inputs where the condition mostly holds (PRIM). The condition: NAME OP VALUE joined by &,
NAME an output in December of a year (high_skill_share@2030, income_mean@Y, income_median@Y, cost@Y)
or an input key; OP one of < <= > >=. inputs_file=PATH: a YAML mapping of config keys to [LO, HI] and an
optional groups: list (the command line wins). year=Y adds that year's outputs to design.csv.
quick=true: n=64, 2,000 agents, unless given. Writes design.csv, trajectory.csv, box.csv, choice.json,
config.yaml, manifest.json and COMPLETE into out (default results/discovery/<time>_<region>);
`skillsim-report OUT` draws it."""


def parse_condition(text: str) -> list[tuple[str, str, float]]:
    terms = []
    for part in text.split("&"):
        m = TERM.match(part)
        if not m:
            raise ConfigError("condition", text, "NAME OP VALUE terms joined by &, e.g. high_skill_share@2030<0.35")
        try:
            terms.append((m.group(1), m.group(2), float(m.group(3))))
        except ValueError:
            raise ConfigError("condition", text, "a number after the operator") from None
    return terms


def condition_years(terms: list[tuple[str, str, float]]) -> tuple[int, ...]:
    return tuple(sorted({int(name.split("@")[1]) for name, _, _ in terms if "@" in name}))


def holds(table: pd.DataFrame, terms: list[tuple[str, str, float]]) -> np.ndarray:
    out = np.ones(len(table), dtype=bool)
    for name, op, value in terms:
        if name not in table.columns:
            raise ConfigError("condition", name, "an output NAME@YEAR or an input of the study: " +
                              ", ".join(c for c in table.columns if c not in ("point", "replicate")))
        out &= OPS[op](table[name].to_numpy(dtype=float), value)
    return out


def hypercube(inputs: list[Input], n: int, seed: int) -> np.ndarray:
    from scipy.stats import qmc

    lo = np.array([i.lo for i in inputs])
    hi = np.array([i.hi for i in inputs])
    return lo + qmc.LatinHypercube(len(inputs), seed=seed).random(n) * (hi - lo)


def prim_box(x: pd.DataFrame, y: np.ndarray, *, threshold: float, peel_alpha: float, mass_min: float,
             ranges: dict[str, tuple[float, float]] | None = None) -> dict:
    """PRIM's peeling trajectory and the chosen box (module docstring)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # EMA Workbench warns about its optional parallel back-ends
        from ema_workbench.analysis import prim

        # y is 0/1, so any threshold in (0, 1] marks the same cases of interest; the smallest keeps EMA
        # Workbench from replacing a box below `threshold` by the unpeeled one (losing the trajectory):
        # `threshold` is applied here, in the choice
        p = prim.Prim(x, np.asarray(y, dtype=float), threshold=1e-9, peel_alpha=peel_alpha, mass_min=mass_min)
        box = p.find_box()
    traj = box.peeling_trajectory[["id", "coverage", "density", "mass", "res_dim", "n", "k"]].copy()
    dense = traj[traj["density"] >= threshold]
    # the most coverage among the dense enough; failing any, the densest (not the whole space)
    order = ["coverage", "density"] if len(dense) else ["density", "coverage"]
    chosen = int((dense if len(dense) else traj).sort_values(order, kind="stable").iloc[-1]["id"])
    limits = box.box_lims[chosen]
    init = p.box_init
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = box.inspect(chosen, style="data")[0][1]
    qp = {}
    if len(stats):
        cols = [c for c in stats.columns if c[1] == "qp value"]
        for name, row in stats.iterrows():
            vals = [v for v in row[cols].to_numpy(dtype=float) if np.isfinite(v)]
            qp[name] = max(vals) if vals else float("nan")
    rows = []
    for name in x.columns:
        lo, hi = float(limits.loc[0, name]), float(limits.loc[1, name])
        flo, fhi = float(init.loc[0, name]), float(init.loc[1, name])  # the cases' extremes
        rlo, rhi = (ranges or {}).get(name, (flo, fhi))
        cut_lo, cut_hi = lo > flo, hi < fhi
        # a side PRIM did not peel stays at the cases' extreme: said as the input's range there (the smallest
        # value sampled, 0.018 of a 0-3 range, read as a restriction)
        rows.append({"input": name, "box_lo": lo if cut_lo else rlo, "box_hi": hi if cut_hi else rhi,
                     "range_lo": rlo, "range_hi": rhi, "restricted": bool(cut_lo or cut_hi),
                     "restricted_side": "both" if cut_lo and cut_hi else "lower" if cut_lo else "upper" if cut_hi
                     else "", "qp_value": qp.get(name, float("nan"))})
    boxes = pd.DataFrame(rows).sort_values(["restricted", "qp_value"], ascending=[False, True], kind="stable")
    traj["chosen"] = traj["id"] == chosen
    return {"trajectory": traj.reset_index(drop=True), "box": boxes.reset_index(drop=True),
            "chosen": traj[traj["id"] == chosen].iloc[0].to_dict(), "threshold_met": bool(len(dense))}


def significant_restrictions(box: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The box's restrictions with a quasi-p-value at or below 0.05, and how many others it restricts
    (said to be not significant, in either language)."""
    restricted = box[box["restricted"].astype(bool)]
    main = restricted[restricted["qp_value"] <= 0.05]
    return main, len(restricted) - len(main)


def analyse(table: pd.DataFrame, inputs: list[Input], condition: str, *, threshold: float, peel_alpha: float,
            mass_min: float, seed: int = 0, folds: int = FOLDS) -> dict:
    """The cases (one row per run: the inputs and the outputs) -> the folder's tables: design (with
    `of_interest`), trajectory, box and choice (the chosen box said in a sentence). What the command
    runs after the model; tests give it cases built on the inputs alone."""
    table = table.copy()
    table["of_interest"] = holds(table, parse_condition(condition))
    k = int(table["of_interest"].sum())
    out: dict = {"design": table}
    if not 0 < k < len(table):
        out["choice"] = {"condition": condition, "runs": len(table), "of_interest": k, "box_id": None,
                         "threshold_met": False,
                         "statement": f"{condition} holds in {'none' if k == 0 else 'all'} of the "
                                      f"{len(table)} runs: there is no box to find"}
        return out
    found = prim_box(table[[i.name for i in inputs]], table["of_interest"].to_numpy(), threshold=threshold,
                     peel_alpha=peel_alpha, mass_min=mass_min, ranges={i.name: (i.lo, i.hi) for i in inputs})
    c, box, met = found["chosen"], found["box"], found["threshold_met"]
    y = table["of_interest"].to_numpy()
    main, rest = significant_restrictions(box)
    significant = box_statistics(table, main, y) if len(main) and rest else None
    held = held_out(table, inputs, y, threshold=threshold, peel_alpha=peel_alpha, mass_min=mass_min,
                    seed=seed, folds=folds) if folds >= 2 else None
    choice = {"condition": condition, "runs": len(table), "of_interest": k, "box_id": int(c["id"]),
              "threshold": threshold, "threshold_met": met, "coverage": float(c["coverage"]),
              "density": float(c["density"]), "mass": float(c["mass"]), "restricted": int(c["res_dim"]),
              "significant_only": significant, "held_out": held,
              "held_out_reason": (f"some of the {folds} folds leave no run where the condition holds, or only such "
                                  "runs, to find a box from" if held is None and folds >= 2 else None)}
    choice["statement"] = statement(choice, main, rest)
    out.update(trajectory=found["trajectory"], box=box)
    out["choice"] = choice
    return out


def box_statistics(table: pd.DataFrame, restrictions: pd.DataFrame, y: np.ndarray) -> dict:
    """Density, coverage and mass of the box made of `restrictions` alone (rows of box.csv), on the cases."""
    inside = np.ones(len(table), dtype=bool)
    for _, r in restrictions.iterrows():
        x = table[r["input"]].to_numpy()
        inside &= (x >= r["box_lo"]) & (x <= r["box_hi"])
    n_in, k_in = int(inside.sum()), int(y[inside].sum())
    return {"inputs": list(restrictions["input"]), "density": k_in / n_in if n_in else float("nan"),
            "coverage": k_in / max(int(y.sum()), 1), "mass": n_in / len(table), "runs_inside": n_in,
            "of_interest_inside": k_in}


def held_out(table: pd.DataFrame, inputs: list[Input], y: np.ndarray, *, threshold: float, peel_alpha: float,
             mass_min: float, seed: int = 0, folds: int = FOLDS) -> dict | None:
    """The box's statistics on cases it was not found from: `folds`-fold cross-validation over the design's
    points (a point's replicates stay together). Each fold's box is found by the same rule (prim_box) on
    the other folds and judged on this one; density and coverage are pooled over the folds.

    PRIM chooses its box on the cases whose density it then reports, so that density is optimistic: an
    academic's trial found 82% stated and 37-70% on another seed's cases, and boxes naming different
    inputs from one seed to the next. None if some fold leaves no case of interest, or only such cases,
    to fit on."""
    points = table["point"].to_numpy() if "point" in table else np.arange(len(table))
    ids = np.unique(points)
    fold_of = dict(zip(np.random.default_rng(seed).permutation(ids).tolist(), np.arange(len(ids)) % folds))
    fold = np.array([fold_of[p] for p in points.tolist()])
    names = [i.name for i in inputs]
    ranges = {i.name: (i.lo, i.hi) for i in inputs}
    k_in = n_in = 0
    for f in range(folds):
        fit, test = fold != f, fold == f
        if not 0 < y[fit].sum() < fit.sum():
            return None
        found = prim_box(table.loc[fit, names].reset_index(drop=True), y[fit], threshold=threshold,
                         peel_alpha=peel_alpha, mass_min=mass_min, ranges=ranges)
        restricted = found["box"][found["box"]["restricted"].astype(bool)]
        stats = box_statistics(table.loc[test].reset_index(drop=True), restricted, y[test])
        n_in += stats["runs_inside"]
        k_in += stats["of_interest_inside"]
    return {"folds": folds, "density": k_in / n_in if n_in else None,
            "coverage": k_in / max(int(y.sum()), 1), "mass": n_in / len(table), "runs_inside": n_in,
            "of_interest_inside": k_in}


def statement(c: dict, main: pd.DataFrame, rest: int) -> str:
    """choice.json's sentence: the box's statistics on the cases it was found from, which inputs it
    restricts, what the significant restrictions alone give, and the statistics on held-out cases."""
    cond, k = c["condition"], c["of_interest"]
    ranges = " and ".join(f"{r['input']} in [{r['box_lo']:.4g}, {r['box_hi']:.4g}]" for _, r in main.iterrows())
    said = (f"{cond} holds in {c['density']:.0%} of the runs inside the box found (mass {c['mass']:.0%} of the "
            f"runs); that box holds {c['coverage']:.0%} of the {k} runs where it holds")
    n = len(main) + rest
    if len(main) and rest:
        sig = c["significant_only"]
        said += (f". It restricts {n} inputs; with only the {len(main)} whose quasi-p-values are at or below "
                 f"0.05, {ranges}, it holds in {sig['density']:.0%} of the runs (mass {sig['mass']:.0%}, "
                 f"coverage {sig['coverage']:.0%})")
    elif len(main):
        said += f", with {ranges} (each with a quasi-p-value at or below 0.05)"
    elif rest:
        said += f", restricting {rest} inputs, none with a quasi-p-value at or below 0.05"
    else:
        said += ", with any inputs"
    h = c.get("held_out")
    if h is not None and h["runs_inside"]:
        said += (f". On runs it was not found from ({h['folds']}-fold cross-validation), a box found the same "
                 f"way holds it in {h['density']:.0%} of the runs inside ({h['of_interest_inside']} of "
                 f"{h['runs_inside']}; coverage {h['coverage']:.0%})")
    elif h is not None:
        said += (f". On runs it was not found from ({h['folds']}-fold cross-validation), the boxes found the same "
                 "way held none of them: nothing confirms the box")
    elif c.get("held_out_reason"):
        said += f". No held-out check: {c['held_out_reason']}"
    if not c["threshold_met"]:
        said = f"No box reached the density threshold {c['threshold']:g}; this is the densest found: " + said
    return said


def parse(argv: list[str]) -> tuple[dict, list[tuple[str, str]], list[str]]:
    opts, extra, overrides = dict(OPTIONS), [], []
    given: set[str] = set()
    for key, value in key_values(argv, USAGE, "skillsim-discover"):
        given.add(key)
        if key == "condition":
            opts[key] = value
            parse_condition(value)
        elif key == "year":
            opts["year"] = number(key, value, 1990, 2100, int)
        elif key in ("n", "replicates"):
            opts[key] = number(key, value, 1 if key == "replicates" else 8, 1_000_000, int)
        elif key in ("threshold", "mass_min"):
            opts[key] = number(key, value, 0.0, 1.0)
        elif key == "peel_alpha":  # PRIM peels this share of the box per step: none never ends, half is coarse
            opts[key] = number(key, value, 0.0, 0.5, allowed="a number in (0, 0.5]")  # one range in both messages
            if opts[key] <= 0:
                raise ConfigError(key, opts[key], "a number in (0, 0.5]")
        elif key == "inputs_file":
            opts[key] = value
        elif not study_option(key, value, opts, extra, ALL_GROUPS):
            overrides.append(config_override(key, value, "skillsim-discover", OPTIONS))
    if opts["condition"] is None:
        raise ConfigError("condition", None, 'a condition such as "high_skill_share@2030<0.35"')
    from_condition = set(condition_years(parse_condition(opts["condition"])))
    if from_condition and "year" not in opts:
        opts["years_field"] = "year in condition"  # no year= given: a bad year is the condition's
    years = from_condition | ({opts.pop("year")} if "year" in opts else set())
    opts["years"] = tuple(sorted(years)) or None
    if opts["quick"]:  # a small preset for what was not given: an explicit value wins (n=100 ran 64)
        opts.update({k: v for k, v in {"n": min(opts["n"], 64), "n_agents": min(opts["n_agents"], 2000)}.items()
                     if k not in given})
    return opts, extra, overrides


def check_condition(opts: dict, inputs: list[Input]) -> None:
    """Every name in the condition is an output or an input of the study: a typo fails at start-up,
    before the runs and before any folder is made (setup calls this before it makes one)."""
    names = {i.name for i in inputs}
    for name, _, _ in parse_condition(opts["condition"]):
        metric, at, year = name.partition("@")
        output = metric in ("high_skill_share", "income_mean", "income_median", "cost") and at and year.isdigit()
        if name not in names and not output:  # an output without its year, too (the runs' columns are NAME@YEAR)
            raise ConfigError("condition", name, "an output NAME@YEAR (high_skill_share, income_mean, income_median, "
                              "cost) or an input of the study: " + ", ".join(sorted(names)))


@quiet_when_output_closed
def main(argv: list[str] | None = None) -> None:
    run_command(run, "skillsim-discover", argv, what="discovery folder")


@releases_claims
def run(argv: list[str]) -> Path:
    from ..results import calibration_checksums, config_file_checksums, git_commit, package_versions
    from .forecast import write_folder
    from .sensitivity import ModelEvaluator, runs_table, setup

    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    opts, overrides, cfg, years, inputs, out = setup(argv, "discovery", parse, check=check_condition)
    config_files = config_file_checksums(overrides)  # as the runs read them
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    X = hypercube(inputs, opts["n"], cfg.seed % (2**32))
    reps = list(range(opts["replicates"]))
    log(f"discover: {len(inputs)} inputs, {len(X)} points x {len(reps)} replicates = {len(X) * len(reps)} runs")
    evaluator = ModelEvaluator(cfg, inputs, years, out.parent / f".{out.name}.runs.jsonl", log, prog="discover")
    Y = evaluate_in_chunks(evaluator, X, reps, chunk=CHUNK, log=log, prog="discover")
    tables = analyse(runs_table(inputs, X, reps, Y, cfg), inputs, opts["condition"], threshold=opts["threshold"],
                     peel_alpha=opts["peel_alpha"], mass_min=opts["mass_min"], seed=cfg.seed % (2**32))
    log(f"discover: the condition holds in {tables['choice']['of_interest']} of {len(tables['design'])} runs")
    tables["config"] = to_dict(cfg)
    manifest = {"kind": "discovery", "command": ["skillsim-discover", *argv], "overrides": overrides,
                "region": cfg.region.name, "n_agents": cfg.n_agents, "seed": cfg.seed, "years": list(years),
                "options": {k2: v for k2, v in opts.items() if k2 != "out"}, "runs": len(evaluator.batch.used),
                "library": "ema_workbench.analysis.prim", "versions": package_versions("ema_workbench", "numba"),
                **calibration_checksums(), **config_files,
                "git_commit": git_commit(), "started": started}
    if "inputs_file_content" in opts:  # its path, text and ranges: the folder says what ran
        manifest["options"].pop("inputs_file_content")
        manifest["inputs_file"] = opts["inputs_file_content"]
    path = write_folder(out, tables, manifest, what="discovery")
    evaluator.batch.close()
    log("discover: " + tables["choice"]["statement"])
    log(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
