"""What the explorer shows, without any web code: a `View` (the controls' values), the runs behind it
(the chosen setting and the status quo on the same replicate seeds), and the tables each chart draws.

A view is computed in two stages so that a change shows something at once and then firms up:
1. a first answer: `FIRST_AGENTS` agents and 2 replicates, in this process (about a second);
2. the view's own size and replicates, run by the shared batch runner one replicate pair (chosen and
   status quo) at a time, so progress shows and a newer view cancels the rest (`cancelled()`).

The numbers are those of `skillsim`: the view's `command()` is a sweep over the same replicates whose
ensemble.csv holds the same quantiles (sim.aggregate.QUANTILES over replicates, by date).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import json
import shlex
from dataclasses import dataclass
from typing import Callable

import pandas as pd

from ..aggregate import QUANTILES
from ..errors import ConfigError

FIRST_AGENTS = 2000
EXPERIMENT_NAME = "skillsim_view"  # the exported study file's name (without .yaml)
REGIONS = ("chongqing", "zhong_county", "national")  # sim/conf/region/*.yaml
SCENARIOS = ("baseline", "training_boost", "competition_push", "studio_expansion", "combined", "no_policy")
ALLOCATIONS = ("random", "lowest_level", "near_standard")
SELECTIONS = ("progress", "random")
LEVER_KINDS = ("training", "competition", "studio", "certification")
FUNDERS = ("government", "employer")

# the engine's words on the page (the charts' are charts.TEXT, the page's app.LABELS)
TEXT = {
    "en": {"first_look": "first look: {n:,} agents x 2 {over}", "progress": "{n:,} agents: {done} of {total} {over}",
           "draw": "draws", "replicate": "replicates",
           "memory": "a size that fits in memory (this one needs about {need:.1f} GB, the explorer allows "
                     "{limit:.1f} GB)"},
    "zh": {"first_look": "初步结果：{n:,}个主体 × 2次{over}", "progress": "{n:,}个主体：已完成{done}/{total}次{over}",
           "draw": "联合抽样", "replicate": "重复",
           "memory": "内存能容纳的规模（此规模约需{need:.1f} GB，模拟器上限为{limit:.1f} GB）"},
}


#: the page's last-year slider and its replicates slider, which the first view given at start-up must fit
#: (a browser moves a value outside a slider's range to its end and sends that back)
END_YEARS = (2026, 2035)
MAX_REPLICATES = 32


@dataclass(frozen=True)
class View:
    """The explorer's controls."""

    region: str = "chongqing"
    scenario: str = "baseline"
    training: float = 1.0
    competition: float = 1.0
    studio: float = 1.0
    allocation: str = "random"
    selection: str = "progress"
    members_per_studio: float = 17.4
    end_year: int = 2035
    n_agents: int = 20000
    replicates: int = 8
    uncertainty: bool = True  # runs are joint draws of parameters and structural inputs (if the ensemble exists)

    def overrides(self) -> list[str]:
        """The `skillsim` overrides of the chosen setting (replicate not included): region and scenario,
        then every lever setting the page shows that differs from what that preset composes to, so the
        command runs exactly what the sliders show and stays short."""
        preset = dataclasses.asdict(with_preset(View(region=self.region, scenario=self.scenario)))
        out = [f"region={self.region}", f"scenario={self.scenario}"]
        for field, key in LEVER_FIELDS.items():
            value = getattr(self, field)
            shown = f"{value:g}" if isinstance(value, float) else str(value)
            if shown != (f"{preset[field]:g}" if isinstance(preset[field], float) else str(preset[field])):
                out.append(f"{key}={shown}")
        return out + [f"horizon.end_year={self.end_year}", f"n_agents={self.n_agents}"]

    @property
    def over(self) -> str:
        """What the runs of a view are repeated over: joint draws of the calibration ensemble and the
        structural ranges (the default, when the ensemble exists), or replicates (seeds) only."""
        return "draw" if self.uncertainty and ensemble_exists() else "replicate"

    def command(self) -> str:
        """A `skillsim` sweep that reproduces the chosen setting's numbers (its ensemble.csv)."""
        return shlex.join(["skillsim", "-m", *self.overrides(), f"{self.over}=range(0,{self.replicates})"])

    def experiment_yaml(self) -> str:
        """The view as a study file (a Hydra experiment, as sim/conf/experiments/*) that runs the same
        sweep as `command()`: saved as DIR/experiments/EXPERIMENT_NAME.yaml, it runs with
        `skillsim -m --config-dir DIR +experiments=EXPERIMENT_NAME` (README, "Explorer in the browser")."""
        import yaml

        body: dict = {}
        groups = []
        for override in self.overrides():
            key, value = override.split("=", 1)
            if key in ("region", "scenario"):
                groups.append({f"override /{key}": value})
                continue
            *parents, leaf = key.split(".")
            node = body
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = yaml.safe_load(value)
        body["hydra"] = {"sweeper": {"params": {self.over: f"range(0,{self.replicates})"}}}
        folder = "views"
        head = ["# @package _global_",
                "# A view of skillsim-explore; the same runs as:",
                f"#   {self.command()}",
                f"# Run it: mkdir -p {folder}/experiments && mv {EXPERIMENT_NAME}.yaml {folder}/experiments/",
                f"#         skillsim -m --config-dir {folder} +experiments={EXPERIMENT_NAME}"]
        return "\n".join(head) + "\n" + yaml.safe_dump({"defaults": groups, **body}, sort_keys=False,
                                                        allow_unicode=True)


# View field -> the config key it sets (what a region and scenario preset composes to)
LEVER_FIELDS = {"training": "levers.training.intensity", "competition": "levers.competition.intensity",
                "studio": "levers.studio.intensity", "allocation": "levers.training.allocation",
                "selection": "levers.competition.selection",
                "members_per_studio": "levers.studio.members_per_studio"}


def with_preset(view: View) -> View:
    """The view with its lever settings those of its region and scenario preset (a scenario sets
    intensities and allocation): what the sliders show once a scenario or region is chosen."""
    return dataclasses.replace(view, **preset_levers(view.region, view.scenario))


@functools.lru_cache(maxsize=32)
def preset_levers(region: str, scenario: str) -> dict:
    """The lever settings `skillsim region=R scenario=S` composes to, by View field."""
    cfg = _composed((f"region={region}", f"scenario={scenario}"))
    out = {}
    for field, key in LEVER_FIELDS.items():
        node = cfg
        for part in key.split("."):
            node = getattr(node, part)
        out[field] = float(node) if isinstance(node, (int, float)) and not isinstance(node, bool) else node
    return out


def chosen_config(view: View, n_agents: int | None = None):
    overrides = view.overrides()
    if n_agents is not None:
        overrides = [o for o in overrides if not o.startswith("n_agents=")] + [f"n_agents={n_agents}"]
    return _composed(tuple(overrides))


def region_label(region: str, lang: str) -> str:
    """A region preset's display name (its label_en / label_zh), for the region control."""
    reg = _composed((f"region={region}",)).region
    return reg.label_zh if lang == "zh" else reg.label_en


@functools.lru_cache(maxsize=64)
def _composed(overrides: tuple[str, ...]):
    """Composition takes about 0.2 s; a page re-renders often with the same view."""
    from ..cli import compose_config

    return compose_config(list(overrides))


@functools.lru_cache(maxsize=1)
def ensemble_exists() -> bool:
    from ..errors import SkillsimError
    from ..studies.uncertainty import load_ensemble

    try:
        return len(load_ensemble()) > 0
    except SkillsimError:
        return False


def run_config(cfg, r: int, over: str):
    """Run r of a view: joint draw r (replicate 0), as `skillsim draw=r` composes it, or replicate r."""
    if over == "draw":
        from ..studies.uncertainty import draw_config

        return draw_config(dataclasses.replace(cfg, draw=r), r)
    return dataclasses.replace(cfg, replicate=r)


def status_quo_config(cfg):
    from ..history import status_quo

    return dataclasses.replace(cfg, levers=status_quo(cfg.levers))


class TooBig(ConfigError):
    """An agent count beyond the explorer's memory limit: a ConfigError that can say what is allowed in
    either language (the page shows it in the language chosen when it is shown)."""

    def __init__(self, n_agents: int, need: float, limit: float):
        self.need, self.limit = need, limit
        super().__init__("n_agents", n_agents, self.allowed_in("en"))

    def allowed_in(self, lang: str) -> str:
        return TEXT[lang]["memory"].format(need=self.need, limit=self.limit)

    def __reduce__(self):
        return type(self), (self.value, self.need, self.limit)


def check(view: View):
    """The composed, checked config of a view; a SkillsimError (one line) for a bad value."""
    from ..config import estimate_memory_gb

    cfg = chosen_config(view)
    need = estimate_memory_gb(cfg)
    limit = memory_limit_gb()
    if need > limit:
        raise TooBig(view.n_agents, need, limit)
    return cfg


def memory_limit_gb() -> float:
    """Half the machine's memory: the explorer runs two settings side by side."""
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30 / 2
    except (ValueError, OSError, AttributeError):
        return 4.0


def read_series(model) -> dict:
    """What a run contributes to the charts (a small dict, so batch workers send little back)."""
    s = model.series()
    keep = ["date", "high_skill_share", "high_skill_workers", "income_mean", "income_median",
            *[f"level_{k}" for k in range(8)], *[c for c in s.columns if c.startswith("spend_")]]
    return {c: s[c].tolist() for c in keep}


@dataclass
class Result:
    """The runs of a view so far: per kind ('chosen', 'status_quo'), one series dict per replicate."""

    view: View
    n_agents: int
    runs: dict[str, list[dict]]
    final: bool = False

    @property
    def replicates(self) -> int:
        return min(len(v) for v in self.runs.values())

    def long(self, kind: str, metric: str) -> pd.DataFrame:
        """date x replicate values of one metric."""
        runs = self.runs[kind][:self.replicates]
        return pd.DataFrame({r: run[metric] for r, run in enumerate(runs)}, index=runs[0]["date"])

    def fan(self, metric: str = "high_skill_share") -> pd.DataFrame:
        """Quantiles over replicates by date for both kinds (as sim.aggregate.ensemble)."""
        rows = []
        for kind in self.runs:
            wide = self.long(kind, metric)
            out = pd.DataFrame({"kind": kind, "date": wide.index, "metric": metric, "n": wide.shape[1],
                                "mean": wide.mean(axis=1).to_numpy()})
            for name, q in QUANTILES.items():
                out[name] = wide.quantile(q, axis=1).to_numpy()
            rows.append(out)
        return pd.concat(rows, ignore_index=True)

    def composition(self) -> pd.DataFrame:
        """Mean share of each level among skilled workers (levels 1-7) by date, chosen setting."""
        levels = {k: self.long("chosen", f"level_{k}").mean(axis=1) for k in range(1, 8)}
        total = sum(levels.values())
        return pd.DataFrame({"date": total.index, **{f"level_{k}": (v / total).to_numpy() for k, v in levels.items()}})

    def costs(self) -> pd.DataFrame:
        """Mean cumulative spend to the end, by lever and funder, both kinds (yuan)."""
        rows = []
        for kind in self.runs:
            for lever in LEVER_KINDS:
                for funder in FUNDERS:
                    col = f"spend_{lever}_{funder}"
                    if col in self.runs[kind][0]:
                        wide = self.long(kind, col)
                        rows.append({"kind": kind, "lever": lever, "funder": funder,
                                     "cumulative_yuan": float(wide.iloc[1:].sum(axis=0).mean())})
        return pd.DataFrame(rows)

    def cost_per_worker(self) -> pd.DataFrame:
        """By December of each year: per run, cumulative extra spend over the status quo (all levers and
        funders, from the first month as summary() counts it) over the extra high-skill workers then, on
        the same draw and seed; quantiles over the runs that add workers (`adding` of `n`): where a run
        adds none the cost per worker is undefined, not infinite or negative."""
        extra_spend = (self.long("chosen", "spend_total") - self.long("status_quo", "spend_total"))
        extra_spend.iloc[0] = 0.0
        extra_spend = extra_spend.cumsum()
        extra_workers = self.long("chosen", "high_skill_workers") - self.long("status_quo", "high_skill_workers")
        dec = [d for d in extra_spend.index[1:] if str(d).endswith("-12")]  # not the start (no policy yet)
        spend, workers = extra_spend.loc[dec], extra_workers.loc[dec]
        per = (spend / workers).where(workers > 0)
        out = pd.DataFrame({"date": dec, "n": workers.shape[1], "adding": (workers > 0).sum(axis=1).to_numpy(),
                            "extra_spend_mean": spend.mean(axis=1).to_numpy(),
                            "extra_workers_mean": workers.mean(axis=1).to_numpy()})
        for name in ("q25", "median", "q75"):
            out[name] = per.quantile(QUANTILES[name], axis=1).to_numpy()
        return out

    def summary(self) -> dict:
        """December of the end year: medians, the difference on common random numbers, and the cost
        per additional high-skill worker (extra cumulative spend / extra high-skill workers)."""
        share = {k: self.long(k, "high_skill_share").iloc[-1] for k in self.runs}
        workers = {k: self.long(k, "high_skill_workers").iloc[-1] for k in self.runs}
        spend = {k: self.long(k, "spend_total").iloc[1:].sum(axis=0) for k in self.runs}
        diff = share["chosen"] - share["status_quo"]
        extra_workers = float((workers["chosen"] - workers["status_quo"]).mean())
        extra_cost = float((spend["chosen"] - spend["status_quo"]).mean())
        return {"date": self.long("chosen", "high_skill_share").index[-1], "replicates": self.replicates,
                "n_agents": self.n_agents, "final": self.final,
                "share_chosen": float(share["chosen"].median()), "share_status_quo": float(share["status_quo"].median()),
                "share_difference": float(diff.mean()), "extra_cost_yuan": extra_cost,
                "extra_high_skill_workers": extra_workers,
                "cost_per_extra_worker": extra_cost / extra_workers if extra_workers > 0 else float("nan")}


def progress_text(view: View, done: int, lang: str = "en") -> str:
    """How far a view's runs are: `done` of its runs finished (0: the first look, at FIRST_AGENTS)."""
    T = TEXT[lang]
    if done == 0:
        return T["first_look"].format(n=FIRST_AGENTS, over=T[view.over])
    return T["progress"].format(n=view.n_agents, done=done, total=view.replicates, over=T[view.over])


def compute(view: View, update: Callable[[Result, int], None], cancelled: Callable[[], bool] = lambda: False,
            first: bool = True) -> Result | None:
    """Run a view in its two stages, calling update(result, done) as it firms up (done: runs finished,
    0 for the first look; progress_text says it in a language, so the page can switch language after);
    returns the final result, or None if cancelled (a newer view)."""
    cfg = check(view)
    over = view.over
    # the status quo: the region's baseline with every lever setting at its default (studio places too)
    base = status_quo_config(chosen_config(View(region=view.region, end_year=view.end_year, n_agents=view.n_agents)))

    def pair(r: int, n_agents: int | None = None) -> list:
        size = (lambda c: c) if n_agents is None else (lambda c: dataclasses.replace(c, n_agents=n_agents))
        return [run_config(size(cfg), r, over), run_config(size(base), r, over)]  # the same draw and seed

    if first and view.n_agents > FIRST_AGENTS:
        runs = run_pairs(pair(0, FIRST_AGENTS) + pair(1, FIRST_AGENTS))
        if cancelled():
            return None
        update(Result(view, FIRST_AGENTS, {"chosen": runs[0::2], "status_quo": runs[1::2]}), 0)
    result = Result(view, view.n_agents, {"chosen": [], "status_quo": []})
    r = 0
    while r < view.replicates:
        if cancelled():
            return None
        # a step of replicates with about two runs to do (one per core): two pairs when the status
        # quo's runs are cached (a lever moved), one pair otherwise
        step = 2 if (r + 1 < view.replicates and cached(pair(r)[1]) and cached(pair(r + 1)[1])) else 1
        done = run_pairs([c for k in range(r, r + step) for c in pair(k)])
        result.runs["chosen"] += done[0::2]
        result.runs["status_quo"] += done[1::2]
        r += step
        result.final = r == view.replicates
        if r >= 2 or view.replicates == 1:
            update(result, r)
    return result


#: the status quo's runs by config: moving a lever changes only the chosen setting, so the status
#: quo's runs of the same region, horizon, size and draws are reused (most recent STATUS_QUO_RUNS)
STATUS_QUO_RUNS = 64
_status_quo: "collections.OrderedDict[str, dict]" = collections.OrderedDict()


def _key(cfg) -> str:
    from ..config import to_dict

    return json.dumps(to_dict(cfg), sort_keys=True, default=str)


def cached(cfg) -> bool:
    return _key(cfg) in _status_quo


def run_pairs(configs: list, jobs: int | None = None) -> list[dict]:
    """read_series of [chosen, status quo, chosen, status quo, ...], the status quo's from the cache
    where it holds them (the same numbers: a run is a function of its config)."""
    from ..studies.batch import run_batch

    keys = [_key(c) if k % 2 else None for k, c in enumerate(configs)]
    todo = [k for k, key in enumerate(keys) if key is None or key not in _status_quo]
    out: list = [None] * len(configs)
    # a cold compiled cache is filled by a process of its own, the first charts drawn meanwhile with numpy
    for k, series in zip(todo, run_batch([configs[k] for k in todo], read_series, jobs=jobs, wait_for_compiling=False)):
        out[k] = series
        if keys[k] is not None:
            _status_quo[keys[k]] = series
    for k, key in enumerate(keys):
        if key is not None:
            _status_quo.move_to_end(key)
            out[k] = _status_quo[key]
    while len(_status_quo) > STATUS_QUO_RUNS:
        _status_quo.popitem(last=False)
    return out
