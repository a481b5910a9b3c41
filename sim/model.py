"""WorkforceModel: the eight-level workforce as a Mesa model over worker arrays."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
from .lazy import pd

from . import calendar
from .mesa_frame import DataCollector, Model
from .certification import appoint, certify
from .config import RunConfig, validate
from .errors import interrupts_kept
from . import alignment, history, history_reuse, pages, passes
from .demography import SizePath, fill_entrants, initial_population, make_firms, separation_hazard
from .kernels_numpy import sorted_distinct, union_sorted  # np.unique, np.union1d without numpy.ma
from .levers import default_levers
from .levers.base import Lever
from .metrics import CHANNELS, column_names, measure
from .rates import RateTables, refresh, refresh_all
from .streams import RandomStreams, replicate_seed
from .workforce import LevelLedger, Workforce

FLOWS = tuple(f"promotions_{c}" for c in CHANNELS) + (
    "entries", "exits", "exits_retirement", "exits_quit", "firm_moves")


_NO_SLOTS = np.empty(0, dtype=np.int64)  # no prize this month (pay_bonus makes a new array, never writes here)
_NO_SLOTS.flags.writeable = False


def _reporter(name: str):
    def report(model: "WorkforceModel") -> float:
        return model.row[name]

    report.__name__ = f"report_{name}"
    return report


def _report_date(model: "WorkforceModel") -> str:
    return model.dates[-1]


def _report_run_seed(model: "WorkforceModel") -> int:
    return model.run_seed


class SeriesCollector(DataCollector):
    """Mesa's DataCollector (the same tables and API, for batch_run and users' code), filled from the
    row the model measures each month: one append per column, without Mesa's reporter call and
    deepcopy per column (the values are floats and the date a string).

    It holds one row per simulated month, from the first forecast month to December of the end year,
    with a `date` column: so `mesa.batch_run`, which reports row `model.steps - 1` as the last, reports
    December of the end year. The start state (before the first month) is `model.start_row`, and
    `model.series()` puts it first, as series.csv does."""

    def collect(self, model) -> None:
        row = model.row
        sinks = self.__dict__.get("_sinks")
        if sinks is None or sinks[0] is not self.model_vars:  # each column's list, once
            sinks = self._sinks = (self.model_vars, [(values, var) for var, values in self.model_vars.items()
                                                     if var not in ("date", "run_seed")],
                                   self.model_vars.get("date"), self.model_vars.get("run_seed"))
        for values, var in sinks[1]:
            values.append(row[var])
        if sinks[2] is not None:
            sinks[2].append(model.dates[-1])
        if sinks[3] is not None:
            sinks[3].append(model.run_seed)


class WorkforceModel(Model):
    """A region's skilled industrial workforce, stepped month by month.

    Build it with a `RunConfig`, or the Mesa way with keywords (as `mesa.batch_run` does):
    `WorkforceModel(seed=1)`, `WorkforceModel(region="national", training_intensity=2, end_year=2030)`;
    the keywords are those of `sim.api.PARAMETERS` plus `region`, `scenario` and `overrides=[...]`
    (dotted `key=value` strings, as on the command line), composed as `skillsim` composes them.
    Without a config, `seed=None` draws a fresh seed, as Mesa models do; `model.run_seed` is the seed
    used. Call `step()` once per month or `run()` to the horizon's end; the monthly series is in
    `datacollector` (one row per month, with its date) and `series()` (with the start state first).
    `levers` replaces the configured levers, for example to run without one of them.
    """

    def __init__(self, config: RunConfig | None = None, *, seed: int | None = None,
                 n_agents: int | None = None, levers: list[Lever] | None = None, region: str | None = None,
                 scenario: str | None = None, overrides: list[str] | None = None, **params):
        from . import api

        params = {k: v for k, v in params.items() if v is not None}
        if config is not None and (region is not None or scenario is not None or overrides):
            from .errors import ConfigError

            raise ConfigError("region/scenario/overrides", (region, scenario, overrides),
                              "only without a config (they compose one); with a config, set its fields")
        composing = config is None and (region is not None or scenario is not None or bool(overrides))
        if composing:  # seed and n_agents too, so that one also given in overrides is refused, not overruled
            named = {k: v for k, v in (("seed", seed), ("n_agents", n_agents)) if v is not None}
            cfg = api.compose(region, scenario, overrides or (), **params, **named)
            seed = n_agents = None
        else:
            cfg = config if config is not None else RunConfig()
            if params:
                cfg = api.apply(cfg, **params)
        seeded = ("seed" in params or (composing and "seed" in named)
                  or any(o.split("=", 1)[0].lstrip("+~") == "seed" for o in overrides or ()))
        if seed is None and config is None and not seeded:
            seed = int(np.random.SeedSequence().entropy % (1 << 63))  # fresh, recorded in cfg.seed
        if seed is not None:
            cfg = dataclasses.replace(cfg, seed=seed)
        if n_agents is not None:
            cfg = dataclasses.replace(cfg, n_agents=n_agents)
        cfg = validate(cfg)
        self.run_seed = replicate_seed(cfg.seed, cfg.replicate)
        super().__init__(seed=self.run_seed)
        self.cfg = cfg
        self.streams = RandomStreams(self.run_seed)
        self.start_month = cfg.start_month  # absolute index of the first forecast month
        self.size_path = SizePath(cfg)
        obs = history.observations(cfg)
        share0 = history.cold_share(cfg, obs)
        origin = history.origin_month(cfg)
        # t: month being simulated relative to the forecast start (0 = first forecast month); the
        # history runs at t < 0 and the start state is t = -1.
        self.t = origin - self.start_month
        self.weight = float(np.float32(cfg.weight))  # as stored per agent, so flows and stocks agree
        self.pass_prob = np.asarray(cfg.behaviour.pass_prob, dtype=float)
        self.appoint_rate = np.asarray(cfg.behaviour.appointment_rate, dtype=float)
        self.cert_subsidy = np.concatenate([[0.0], cfg.cert_subsidy])  # by new level 1..5

        self.wage_index_start = cfg.region.base_wage / 12.0  # at the region's observed date (base_wage's)
        self._wage_anchor = calendar.month_index(cfg.region.observed)
        with pages.for_model(cfg.n_agents):  # a large workforce's new columns in ordinary pages (sim.pages)
            self._build_start_state(cfg, obs, share0, origin)
            self.levers = list(levers) if levers is not None else default_levers(cfg.levers)
            self._reset_month()
            for lever in self.levers:
                lever.init(self)
            self.row = measure(self)
        # run_seed: each batch_run row says which run it is (WorkforceModel(seed=run_seed) repeats it)
        self.datacollector = SeriesCollector(model_reporters={"date": _report_date, "run_seed": _report_run_seed,
                                                              **{c: _reporter(c) for c in column_names()}})
        self.start_row = self.row  # the start state (t = -1): first row of series()
        self.dates: list[str] = [calendar.label(self.now)]

    def _build_start_state(self, cfg: RunConfig, obs, share0, origin: int) -> None:
        """The workforce at the start state: the history's end state restored, or simulated."""
        name, kernels = passes.for_construction(cfg.n_agents)  # numpy passes while the compiled load
        key = history_reuse.history_key(cfg, name, f"{type(self).__module__}.{type(self).__qualname__}")
        #: whether the history's end state was restored (sim.history_reuse) rather than simulated
        self.history_reused = history_reuse.CACHE.restore(key, self, kernels)
        if not self.history_reused:
            self._simulate_history(cfg, obs, share0, origin, kernels)
            history_reuse.CACHE.keep(key, self)
        # the run's passes from now on; no kernel-loading thread outlives the construction
        self.workforce.kernels = passes.built(self.workforce.kernels, cfg.n_agents)

    def _simulate_history(self, cfg: RunConfig, obs, share0, origin: int, kernels) -> None:
        """The initial population at the history's origin, then the history: status-quo levers through
        the observed dates (sim.history), aligned to each observation if configured. Runs that share
        a history restore its end state instead (sim.history_reuse)."""
        self.firms = make_firms(cfg, self.streams.get("firms", 0))
        end = self.start_month + cfg.n_months - 1
        peak = max(self.size_path.agents(m) for m in {origin, self.start_month - 1, end})
        self.workforce = Workforce(int(peak * 1.02) + 64, kernels)
        mix = None if share0 is None else history.scaled_mix(cfg.region.skilled_mix, share0)
        with interrupts_kept():
            initial_population(self.workforce, cfg, self.firms, self.now, self.streams.get("population", 0),
                               n=self.size_path.agents(origin), skilled_mix=mix)
            self.rates = RateTables(cfg, self.firms.premium)
            refresh_all(self.workforce, self.rates)
            self.ledger = LevelLedger(self.workforce)
        self.workforce.kernels = passes.built(kernels, cfg.n_agents)  # the history's months with the run's passes
        self.wage_index = self._wage_index()
        self.level_counts = np.zeros(8)
        self.bonus_slots = _NO_SLOTS
        self.history_rows: list[dict] = []
        self.history_dates: list[str] = []
        self.aligned: dict[str, int] = {}  # date -> agents moved by alignment
        self._reset_month()

        # The history: status-quo levers through the observed dates (sim.history).
        self.levers = default_levers(history.status_quo(cfg.levers))
        for lever in self.levers:
            lever.init(self)
        self._collect_history()
        pending = {o.month: o for o in history.spinup_points(cfg, obs) + obs} if cfg.region.history.align else {}
        while self.t < -1:
            self.t += 1
            self._month()
            if self.now in pending:
                with interrupts_kept():
                    self._align(pending[self.now])
            self._collect_history()

    # -- calendar ---------------------------------------------------------------------------
    @property
    def now(self) -> int:
        """Absolute month index of the state: the month being simulated (or the start state)."""
        return self.start_month + self.t

    @property
    def year(self) -> int:
        return self.now // 12

    @property
    def calendar_month(self) -> int:
        return self.now % 12 + 1

    @property
    def done(self) -> bool:
        return self.t + 1 >= self.cfg.n_months

    def _wage_index(self) -> float:
        """Monthly yuan per unit of relative pay: the base wage, which is the region's at its observed date
        (`region.observed`, the date of its money figures), grown from there, or deflated before it, at
        the nominal rate. A given calendar month therefore pays the same whatever the forecast's start
        (anchored at the start state instead, `horizon.start_year=2030` paid 2035 a third less)."""
        return self.wage_index_start * (1.0 + self.cfg.wages.growth_per_year) ** ((self.now - self._wage_anchor) / 12.0)

    # -- the step ---------------------------------------------------------------------------
    def step(self) -> None:
        """Simulate one month. Phases, in this order:

        a. Demography: ageing; retirement at the statutory age by sex and birth cohort
           (rule_retirement); voluntary separations falling with level (prior_turnover), some leaving
           the region and the rest changing firm; entrants (apprentices and new junior workers) to
           keep the workforce on its growth path.
        b. Learning: progress towards the next standard grows by the worker's monthly gain
           (aptitude x level rate x studio multiplier); time at level grows by one month.
        c. Levers, in this fixed order: training, competition, studio.
        d. Certification, in assessment months: workers who have served the wait less their
           training credit and met the standard sit the assessment with a probability (higher after
           training) and pass with another, moving up one level;
           certificate subsidies are booked as government spend (rule_cert_subsidy).
        e. Appointments to 特级技师 and 首席技师, each December, at the configured annual rates.
        f. Wages: the wage index grows at the nominal rate; pay = index x cached relative pay, plus
           this month's prizes.
        g. Collection of the monthly series.

        Levers act after learning and before certification so that a course or a competition this
        month can count at this month's assessment.
        """
        if self.done:
            raise RuntimeError(f"the horizon ends in {self.cfg.horizon.end_year}; the model has run to its end")
        self.t += 1
        self._month()
        self._collect()
        if self.done:
            self.running = False

    def _month(self) -> None:
        """Phases a-f of one month (the history runs them too, with the status-quo levers)."""
        with interrupts_kept(), pages.for_model(self.cfg.n_agents):
            self._phases()

    def _phases(self) -> None:
        self._reset_month()
        self._demography()
        self._learn()
        for lever in self.levers:
            lever.apply(self)
        if self.calendar_month in self.cfg.behaviour.assessment_months:
            self._certify()
        if self.calendar_month == 12:
            self._appoint()
        self.wage_index = self._wage_index()

    def _align(self, obs) -> None:
        """Align the level mix to an observation of the history (sim.alignment): first the workers
        without a certificate, by the share of the gap `region.history.uncertified_alignment` closes,
        then the ladder's boundaries."""
        wf = self.workforce
        rng = self.streams.get("alignment", self.now)
        closed = self.cfg.region.history.uncertified_alignment
        moved = 0
        if closed > 0:
            crossed, donors = alignment.uncertified_moves(wf, self.cfg.region.uncertified_share, closed, rng)
            self.ledger.remove(wf, crossed)
            alignment.take_states(wf, crossed, donors)
            refresh(wf, crossed, self.rates)
            self.ledger.add(wf, crossed)
            moved = crossed.size
        targets = alignment.target_counts(alignment.agent_counts(wf), obs.share, obs.level_share)
        moves = alignment.plan_moves(wf, targets, rng)
        touched = sorted_distinct(np.concatenate([np.concatenate([p, d]) for _, p, d in moves] or [np.empty(0, int)]))
        self.ledger.remove(wf, touched)
        self.aligned[calendar.label(self.now)] = moved + alignment.apply_moves(wf, moves, rng)
        refresh(wf, touched, self.rates)
        self.ledger.add(wf, touched)

    def run(self) -> "WorkforceModel":
        """Step to the end of the horizon."""
        while not self.done:
            self.step()
        return self

    # -- phases -----------------------------------------------------------------------------
    def _reset_month(self) -> None:
        self.flows = dict.fromkeys(FLOWS, 0.0)
        self.certification_spend = 0.0
        if self.bonus_slots.size:
            self.workforce.bonus[self.bonus_slots] = 0
            self.bonus_slots = _NO_SLOTS

    def _demography(self) -> None:
        wf, w = self.workforce, self.weight
        # Ageing and retirement (rule_retirement); separations (prior_turnover), of which a retiree
        # takes no part; movers to a new firm and out of any studio, with the ledger and cached rates
        # kept current; all who left out of the ledger: one call of the passes (depart).
        hazard, p_max, leave_share = self._separation
        gone, n_retired, n_movers = wf.kernels.depart(
            self.streams.get("demography", self.now), wf.age, wf.retire_age, wf.scratch("retired"), wf.level,
            hazard, p_max, leave_share, *self.firms.alias, wf.weight, wf.studio_since, wf.aptitude, wf.firm,
            wf.wage_factor, wf.gain, wf.pay, self.ledger.count, self.ledger.pay, *self.rates.kernel_tables,
            wf.threads)
        n_new = max(0, self.size_path.agents(self.now) - (wf.n - gone.size))
        slots = wf.replace(gone, n_new, in_order=True)  # depart lists them in slot order
        # entrants written, their rates computed and added to the ledger in one pass
        fill_entrants(wf, slots, self.cfg, self.firms, self.now, self.streams.get("entrants", self.now),
                      rates=self.rates, ledger=self.ledger)
        self.flows.update(
            exits=gone.size * w,
            exits_retirement=n_retired * w,
            exits_quit=(gone.size - n_retired) * w,
            firm_moves=n_movers * w,
            entries=n_new * w,
        )

    @functools.cached_property
    def _separation(self) -> tuple[np.ndarray, float, np.float32]:
        """The monthly separation hazard by level, its highest value and the share leaving the region:
        the same every month of a run (the passes' depart)."""
        beh = self.cfg.behaviour
        hazard = separation_hazard(beh)
        return hazard, float(hazard.max()), np.float32(beh.leave_share)

    def _learn(self) -> None:
        wf = self.workforce
        wf.kernels.learn(wf.progress, wf.gain, wf.months_at_level, wf.threads)

    def promote(self, idx: np.ndarray, channel: str) -> None:
        """Move `idx` one level up through `channel` (certification, competition, studio, appointment)."""
        if len(idx) == 0:
            return
        wf = self.workforce
        # ledger out, certification.promote, rates.refresh, ledger in: one compiled pass
        wf.kernels.promote(np.asarray(idx, dtype=np.int64), wf.level, wf.months_at_level, wf.progress, wf.credit,
                        wf.weight, wf.studio_since, wf.aptitude, wf.firm, wf.wage_factor, wf.gain, wf.pay,
                        self.ledger.count, self.ledger.pay, *self.rates.kernel_tables, wf.threads)
        self.flows[f"promotions_{channel}"] += len(idx) * self.weight

    def _certify(self) -> None:
        wf = self.workforce
        sit_untrained, sit_trained, pass_prob = self._sitting
        passed = certify(wf, pass_prob, sit_untrained, sit_trained, self.streams.get("certification", self.now))
        self.certification_spend = float(self.cert_subsidy[wf.level[passed] + 1].sum()) * self.weight
        self.promote(passed, "certification")

    @functools.cached_property
    def _sitting(self) -> tuple[np.ndarray, float, np.ndarray]:
        """The chance per round that an untrained eligible worker sits the assessment, by level, a
        trained one's, and the chance of passing by level, as the passes take them (float32): the
        same every round of a run (the passes only read them)."""
        beh = self.cfg.behaviour
        rounds = len(set(beh.assessment_months))
        sit_untrained = 1.0 - (1.0 - np.asarray(beh.sit_rate)) ** (1.0 / rounds)
        return sit_untrained.astype(np.float32), beh.trained_sit_prob, self.pass_prob.astype(np.float32)

    def _appoint(self) -> None:
        min_months = int(round(self.cfg.behaviour.appointment_min_years * 12))
        chosen = appoint(self.workforce, self.appoint_rate, min_months, self.streams.get("appointment", self.now))
        self.promote(chosen, "appointment")

    def pay_bonus(self, idx: np.ndarray, amount: float) -> None:
        """One-off pay (a prize) to `idx` this month, counted in this month's income."""
        self.workforce.bonus[idx] += np.float32(amount)
        self.bonus_slots = union_sorted(self.bonus_slots, idx)

    def _collect(self) -> None:
        self.row = measure(self)
        self.dates.append(calendar.label(self.now))
        self.datacollector.collect(self)

    def _collect_history(self) -> None:
        self.row = measure(self)
        self.history_rows.append(self.row)
        self.history_dates.append(calendar.label(self.now))

    # -- output ---------------------------------------------------------------------------
    def series_columns(self, history: bool = False) -> dict[str, list]:
        """The monthly series as columns (`date`, then every metric), without pandas: what the run
        folder is written from (sim.results). Rows as in `series()`."""
        mv = self.datacollector.model_vars
        cols = {"date": list(self.dates), **{c: [self.start_row[c]] + mv[c] for c in column_names()}}
        if history and len(self.history_rows) > 1:
            past = self.history_rows[:-1]
            cols = {"date": self.history_dates[:-1] + cols["date"],
                    **{c: [row[c] for row in past] + cols[c] for c in column_names()}}
        return cols

    def series(self, history: bool = False) -> pd.DataFrame:
        """The monthly series: `date` (YYYY-MM, state at the end of that month) and all metrics.

        From the start state on; with `history=True` the simulated history comes first (its last row
        is the start state, which is not repeated)."""
        return pd.DataFrame(self.series_columns(history))
