"""Parameter uncertainty: an ensemble of behavioural parameter sets consistent with the targets.

Method: waves of simulations, an emulator of the simulated moments, and Markov chain Monte Carlo on
the emulated posterior (Bayesian calibration with an emulator, as in history matching; Kennedy and
O'Hagan 2001, Vernon et al. 2010), in the calibration's logit coordinates.

Why: with 13 parameters and 8 targets, most directions of the parameter space are pinned down only
weakly, and every evaluation of the simulator carries its replicates' noise, frozen per parameter
set under common random numbers (about half a target sigma between neighbouring parameter sets).
Importance sampling from raw evaluations then puts all the weight on a few lucky draws (the earlier
ensemble had an effective sample size of 3.7: false precision), and ABC-SMC would need tens of
thousands of runs. An emulator fitted to all evaluations keeps the systematic response and averages
the noise away, and MCMC on it costs no simulations; each wave then simulates where the emulated
posterior is, so the emulator is checked and refitted where it matters.

1. **Prior.** Each parameter's prior is a logistic distribution in logit coordinates centred on its
   assumed value (docs/model.md section 12), scale 1: on the parameter's own scale that is uniform over
   its bounds when the assumed value is the middle, and leans towards the assumed value otherwise.
   Proper and smooth, it says "anywhere in the documented range, the assumed value a little likelier".
2. **Waves.** Wave 1 simulates a quarter of its points from the prior (so the emulator sees the whole
   range) and the rest around the fit; each later wave simulates points drawn from the posterior of
   the emulator fitted so far (picked at random from its chains), plus a quarter from the prior.
   The prior points and wave 1's come from scrambled Sobol sequences, so they fill the space evenly.
3. **Emulator.** Each moment is a quadratic function of the parameters (least squares with a little
   ridge; cross terms once there are enough points), fitted to every simulated point with each wave
   weighted twice the one before. Its residual variance (noise and lack of fit) is added to the
   likelihood's, so an imperfect emulator widens the posterior instead of narrowing it.
4. **Likelihood.** Gaussian in the gaps between emulated moments and targets, with the target's own
   sigma, the model's replicate variance of the mean and the emulator's error. Where even the best
   fit misses the targets by more than their sigmas (reduced chi-square above 1), the target and
   replicate variances are scaled by that reduced chi-square: the usual allowance for model
   discrepancy, without which the ensemble would claim the model is exactly right at its best fit.
5. **Posterior.** Adaptive random-walk Metropolis (8 chains) on prior x emulated likelihood; the
   `size` members are drawn from the second halves of the chains. The log reports the chains'
   effective sample size and the emulator's error in each wave's new points, in likelihood sds.

Identification: for each parameter the ratio of the posterior's 90% width to the prior's, on the
natural scale (1: the targets say nothing about it; near 0: pinned down).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from scipy.stats import qmc

PRIOR_SCALE = 1.0  # logistic scale of the prior in logit coordinates (1: uniform over the bounds at the centre)


@dataclass(frozen=True)
class Prior:
    """Independent coordinates, each `dist` (a frozen scipy distribution of unit scale) shifted to `centre`
    and scaled by `scale`."""

    centre: np.ndarray
    scale: float = PRIOR_SCALE
    dist: str = "logistic"

    def _d(self):
        return getattr(stats, self.dist)(loc=0.0, scale=self.scale)

    def logpdf(self, theta: np.ndarray) -> np.ndarray:
        """Log density (closed form: the MCMC calls this tens of thousands of times)."""
        z = (np.atleast_2d(theta) - self.centre) / self.scale
        if self.dist == "logistic":
            a = np.abs(z)
            dens = -a - 2.0 * np.log1p(np.exp(-a))
        else:
            dens = -0.5 * z**2 - 0.5 * np.log(2 * np.pi)
        return dens.sum(axis=1) - z.shape[1] * np.log(self.scale)

    def draw(self, n: int, seed: int) -> np.ndarray:
        return self.centre + self._d().ppf(sobol_uniforms(n, self.centre.size, seed))

    def sample(self, n: int, seed: int) -> np.ndarray:
        """Plain random draws (for comparisons such as the identification table)."""
        return self.centre + self._d().rvs(size=(n, self.centre.size), random_state=np.random.default_rng(seed))


def sobol_uniforms(n: int, d: int, seed: int) -> np.ndarray:
    """The first n of 2^m scrambled Sobol points in [0, 1)^d, kept away from 0 and 1."""
    m = max(0, int(np.ceil(np.log2(max(n, 1)))))
    return np.clip(qmc.Sobol(d, scramble=True, seed=seed).random_base2(m)[:n], 1e-9, 1 - 1e-9)


def normal_draws(n: int, mean: np.ndarray, cov: np.ndarray, seed: int) -> np.ndarray:
    """n draws of N(mean, cov) from scrambled Sobol points (space-filling, reproducible)."""
    d = mean.size
    z = stats.norm.ppf(sobol_uniforms(n, d, seed))
    chol = np.linalg.cholesky(cov + 1e-12 * np.eye(d))
    return mean + z @ chol.T


def log_likelihood(sim_mean: np.ndarray, observed: np.ndarray, sigma: np.ndarray, model_var: np.ndarray) -> np.ndarray:
    """Gaussian synthetic log-likelihood of each row of simulated moment means."""
    var = sigma**2 + model_var
    return -0.5 * np.sum((sim_mean - observed) ** 2 / var, axis=1)


#: the emulator's error on a wave's new points, in likelihood sds, above which the run is warned of
EMULATOR_MISS_SDS = 2.0


def emulator_warnings(points: int, coefficients: int, misses: list[float], last: bool) -> list[str]:
    """What a small design leaves unsaid in the log's emulator line (a user trial: 16 points for 27
    coefficients printed R2 1.00 for every target, an interpolation; a backtest with one point printed R2
    -7e16; errors of 4.5 likelihood sds in the new points passed without comment): fewer points than
    coefficients, and, after the last wave, new points missed by more than EMULATOR_MISS_SDS."""
    out = []
    if points <= coefficients:
        out.append(f"{points} simulated points for the emulator's {coefficients} coefficients: it passes through "
                   "them (its R2 says nothing), and the ensemble follows it; give more draws or stages "
                   f"(draws x stages above {coefficients})")
    if last and misses and max(misses) > EMULATOR_MISS_SDS:
        out.append(f"the emulator's errors in the last wave's new points reach {max(misses):.1f} likelihood sds (root "
                   f"mean square, more than {EMULATOR_MISS_SDS:g}): the ensemble rests on a poor emulator; give more "
                   "draws or stages")
    return out


class QuadraticEmulator:
    """The mean simulated moments as a quadratic function of the parameters (least squares, a little
    ridge), fitted to every evaluation so far.

    Why: under common random numbers each evaluation carries its replicates' noise, frozen per
    parameter set. Nearby parameter sets then differ by about half a target sigma for no reason but
    which worker drew which number, and importance weights computed from raw evaluations are
    dominated by that noise (a handful of lucky draws take all the weight). The emulator keeps the
    moments' systematic response and averages the noise away over all evaluations, the role
    emulators play in history matching; its residuals measure the noise it removed."""

    def __init__(self, ridge: float = 1e-6, cross_dims: int | None = None):
        self.ridge = ridge
        self.cross_dims = cross_dims  # cross terms among the first cross_dims coordinates only (None: all)

    def _products(self, d: int) -> tuple[np.ndarray, np.ndarray]:
        """The coordinate pairs of the quadratic terms: every square, and the cross terms among the first
        `cross_dims` coordinates once there are points enough."""
        c = d if self.cross_dims is None else min(self.cross_dims, d)
        if not getattr(self, "cross", False):
            return np.arange(d), np.arange(d)
        i, j = np.triu_indices(c)
        return np.concatenate([i, np.arange(c, d)]), np.concatenate([j, np.arange(c, d)])

    def features(self, thetas: np.ndarray) -> np.ndarray:
        t = np.atleast_2d(thetas)
        i, j = self._products(t.shape[1])
        return np.hstack([np.ones((len(t), 1)), t, t[:, i] * t[:, j]])

    def fit(self, thetas: np.ndarray, sims: np.ndarray, weights: np.ndarray) -> "QuadraticEmulator":
        d = np.atleast_2d(thetas).shape[1]
        c = d if self.cross_dims is None else min(self.cross_dims, d)
        self.cross = len(thetas) >= 3 * (1 + d + c * (c + 1) // 2 + d - c)  # cross terms once there are draws enough
        x, w = self.features(thetas), np.asarray(weights, dtype=float) / np.sum(weights)
        self.shift, self.spread = x.mean(axis=0), x.std(axis=0)
        self.spread[0], self.shift[0] = 1.0, 0.0
        self.spread[self.spread == 0] = 1.0
        z = (x - self.shift) / self.spread
        a = z.T @ (z * w[:, None]) + self.ridge * np.eye(z.shape[1])
        self.coef = np.linalg.solve(a, z.T @ (sims * w[:, None]))
        resid = sims - z @ self.coef
        self.resid_var = w @ resid**2
        self.r2 = 1 - self.resid_var / np.maximum(w @ (sims - w @ sims) ** 2, 1e-30)
        return self

    def predict(self, thetas: np.ndarray) -> np.ndarray:
        return ((self.features(thetas) - self.shift) / self.spread) @ self.coef


def metropolis(log_post, starts: np.ndarray, cov: np.ndarray, steps: int, seed: int) -> np.ndarray:
    """Random-walk Metropolis chains run side by side (one row of `starts` each), the proposal scaled
    by 2.38^2 / d and re-estimated from the chains' own history after each quarter of the run
    (adaptive Metropolis, Haario et al. 2001). Returns the second half of every chain, (steps/2 x
    chains, d)."""
    rng = np.random.default_rng(seed)
    x = np.array(starts, dtype=float)
    c, d = x.shape
    lp = log_post(x)
    scale = 2.38**2 / d
    chol = np.linalg.cholesky(scale * cov + 1e-9 * np.eye(d))
    kept, history = [], []
    for i in range(steps):
        y = x + rng.standard_normal((c, d)) @ chol.T
        lq = log_post(y)
        ok = np.log(rng.random(c)) < lq - lp
        x[ok], lp[ok] = y[ok], lq[ok]
        history.append(x.copy())
        if (i + 1) % max(1, steps // 4) == 0 and i + 1 < steps:  # adapt on the recent half of the history
            recent = np.concatenate(history[len(history) // 2:])
            chol = np.linalg.cholesky(scale * np.cov(recent.T) + 1e-9 * np.eye(d))
        if i >= steps // 2:
            kept.append(x.copy())
    return np.concatenate(kept)


def chain_ess(samples: np.ndarray, chains: int) -> float:
    """Effective sample size of interleaved chains (rows step-major, `chains` per step): the smallest
    over parameters, from each chain's autocorrelations summed until they first turn negative."""
    n = samples.shape[0] // chains
    per = samples[: n * chains].reshape(n, chains, -1)
    out = []
    for j in range(per.shape[2]):
        x = per[:, :, j] - per[:, :, j].mean(axis=0)
        var = (x**2).mean()
        if var <= 0:
            out.append(float(n * chains))
            continue
        tau = 1.0
        for lag in range(1, n // 2):
            rho = (x[lag:] * x[:-lag]).mean() / var
            if rho <= 0:
                break
            tau += 2 * rho
        out.append(n * chains / tau)
    return float(min(out))


def sample_posterior(evaluate, theta_hat: np.ndarray, prior: Prior, observed: np.ndarray,
                     sigma: np.ndarray, model_var: np.ndarray, *, n_per_stage: int = 128, stages: int = 5,
                     spread: float = 1.0, size: int = 100, seed: int = 0, discrepancy: float = 1.0,
                     prior_share: float = 0.25, mcmc_steps: int = 4000, cross_dims: int | None = None,
                     emulated=None, log=print) -> dict:
    """Waves of simulations, an emulator and MCMC on the emulated posterior (see the module doc).

    `evaluate(thetas) -> simulated moment means` (rows). Wave 1 simulates `prior_share` of its points
    from the prior and the rest around the fit (normal, `spread` logit units); each later wave
    simulates points drawn from the posterior of the emulator fitted so far (and a few from the prior).
    Before each refit, the emulator is checked in the wave's new points (out of sample); after it,
    adaptive Metropolis chains sample prior x emulated likelihood. Returns a dict: thetas and sims
    (every simulated point), stage (its wave), members (`size` posterior draws), ess (of the chains),
    emulator_r2 and emulator_resid_sd (of the last fit), log_weight (log prior + log likelihood of
    each simulated point under the last emulator). `cross_dims`: the emulator's cross terms only among
    the first cross_dims coordinates (the fitted parameters, whose interactions the targets see; the
    assumptions drawn with them get linear and square terms, which 1,280 points can fit in 37 coordinates).
    `emulated(thetas)`: the coordinates the emulator reads (default: thetas), so that it sees a setting as
    the runs apply it: a whole number of months is flat across each logit interval that rounds to it, and
    a quadratic in the logit made the months' lowest value (every logit below -3.85 runs as 0) look as
    varied as the rest (a review).
    """
    emulated = emulated or (lambda th: np.atleast_2d(th))
    d = theta_hat.size
    # a random walk's steps to cross the posterior grow with its dimension: 4,000 gave the 13 fitted
    # parameters an effective sample size of 124, and the 37 coordinates with the assumptions 41-67
    steps = max(mcmc_steps, 300 * d)
    sigma = sigma * np.sqrt(discrepancy)
    model_var = model_var * discrepancy
    theta_hat = np.asarray(theta_hat, dtype=float)
    n_prior = int(round(prior_share * n_per_stage))
    design = np.vstack([prior.draw(n_prior, seed),
                        normal_draws(n_per_stage - n_prior, theta_hat, np.eye(d) * spread**2, seed + 1)])
    thetas = np.empty((0, d))
    sims = np.empty((0, observed.size))
    stage_of = np.empty(0, dtype=int)
    chains, emu = 8, None
    for k in range(stages):
        new_sims = evaluate(design)
        # the previous emulator against the new points: the root mean square of its errors, in likelihood sds
        # (their standard deviation, as before, said nothing of a bias common to every new point)
        misses = [] if emu is None else [float(e) for e in np.sqrt(np.mean((new_sims - emu.predict(emulated(design))) ** 2, axis=0))
                                          / np.sqrt(sigma**2 + model_var + emu.resid_var)]
        check = ("; emulator error in the new points (rms / likelihood sd) " + ", ".join(f"{e:.2f}" for e in misses)
                 if misses else "")
        thetas = np.vstack([thetas, design])
        sims = np.vstack([sims, new_sims])
        stage_of = np.concatenate([stage_of, np.full(len(design), k + 1)])
        emu = QuadraticEmulator(cross_dims=cross_dims).fit(emulated(thetas), sims, 2.0 ** (stage_of - k - 1))  # each wave twice the one before

        def log_post(th: np.ndarray, emu=emu) -> np.ndarray:
            return prior.logpdf(th) + log_likelihood(emu.predict(emulated(th)), observed, sigma, emu.resid_var + model_var)

        order = np.argsort(-log_post(thetas))
        top = thetas[order[: max(2 * d, len(thetas) // 8)]]
        chain = metropolis(log_post, thetas[order[:chains]], np.cov(top.T) + 1e-4 * np.eye(d), steps,
                           seed + 10 * k + 3)
        ess = chain_ess(chain, chains)
        log(f"posterior wave {k + 1}: {len(thetas)} simulated points; chain effective sample size {ess:.0f}; "
            f"emulator R2 {', '.join(f'{r:.2f}' for r in emu.r2)}{check}")
        for line in emulator_warnings(len(thetas), len(emu.coef), misses, k + 1 == stages):
            log(f"warning: {line}")
        if k + 1 < stages:
            rng = np.random.default_rng(seed + 10 * k + 5)
            pick = chain[rng.choice(len(chain), n_per_stage - n_prior, replace=False)]
            design = np.vstack([prior.draw(n_prior, seed + 10 * k + 7), pick]) if n_prior else pick
    rng = np.random.default_rng(seed + 100)
    members = chain[np.sort(rng.choice(len(chain), size, replace=len(chain) < size))]
    return {"thetas": thetas, "sims": sims, "stage": stage_of, "members": members, "ess": ess,
            "log_weight": log_post(thetas), "emulator_r2": emu.r2, "emulator_resid_sd": np.sqrt(emu.resid_var)}


#: members below which a parameter's 90% width is not labelled: the 5% and 95% quantiles of fewer are
#: the extreme members themselves, or near them
MIN_MEMBERS = 40


def identification(names: list[str], posterior_values: np.ndarray, prior_values: np.ndarray,
                   ess: float = float("inf")) -> pd.DataFrame:
    """Posterior against prior 90% width per parameter (natural scale); undetermined when the
    effective sample size is too small to tell, or the members too few for a 90% width (ensemble=4 labelled
    four parameters "well" identified that 100 members of the same chains put at "partly" or "weakly",
    a user trial)."""
    rows = []
    few = len(posterior_values) < MIN_MEMBERS
    for j, name in enumerate(names):
        post = np.quantile(posterior_values[:, j], [0.05, 0.5, 0.95])
        prior = np.quantile(prior_values[:, j], [0.05, 0.95])
        width_ratio = (post[2] - post[0]) / max(prior[1] - prior[0], 1e-12)
        rows.append({"parameter": name, "posterior_q05": post[0], "posterior_median": post[1],
                     "posterior_q95": post[2], "prior_q05": prior[0], "prior_q95": prior[1],
                     "width_ratio": width_ratio,
                     "identified": ("undetermined (effective sample size below 10)" if ess < 10 else
                                    f"undetermined (only {len(posterior_values)} members; {MIN_MEMBERS} or more give "
                                    "a 90% width)" if few else
                                    "well" if width_ratio < 0.33 else "partly" if width_ratio < 0.75 else "weakly")})
    return pd.DataFrame(rows)


def members_table(names: list[str], values: np.ndarray) -> pd.DataFrame:
    df = pd.DataFrame(values, columns=names)
    df.insert(0, "member", np.arange(len(df)))
    return df
