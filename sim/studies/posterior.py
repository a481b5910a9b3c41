"""Parameter uncertainty: an ensemble of behavioural parameter sets consistent with the targets.

Method: adaptive multiple importance sampling (AMIS, Cornuet et al. 2012) with a defensive prior
component (Hesterberg 1995) and tempered adaptation, in the calibration's logit coordinates.
Why this and not ABC-SMC or history matching: with 13 parameters, a handful of targets and well under
a second per evaluation, ABC-SMC needs tens of thousands of runs and history matching an emulator per
wave; importance sampling needs a few thousand runs, reuses every one of them in the final weights,
and its effective sample size says plainly how well the proposals covered the posterior.

1. **Prior.** Each parameter's prior is a logistic distribution in logit coordinates centred on its
   assumed value (docs/model.md section 12), scale 1: on the parameter's own scale that is uniform over
   its bounds when the assumed value is the middle, and leans towards the assumed value otherwise.
   Proper and smooth, it says "anywhere in the documented range, the assumed value a little likelier".
2. **Proposals.** Every stage draws `prior_share` of its points from the prior itself (defensive: the
   directions the targets do not determine keep the prior's spread, and no weight can exceed
   likelihood / prior_share) and the rest from a normal: around the fit (scale `spread`) in stage 1,
   later from the weighted mean and 2 x the weighted covariance of all the draws so far. The weights
   that steer the adaptation are tempered (likelihood to a power beta <= 1, the largest beta whose
   effective sample size is at least a quarter of a stage), so one lucky draw cannot collapse the
   proposal; beta reaches 1 as the draws cover the posterior. Scrambled Sobol points mapped through
   the quantile function fill each proposal evenly.
3. **Weights.** Every draw is weighted by prior x synthetic likelihood / mixture of all proposals,
   in proportion to their draws (deterministic-mixture weights, always with the untempered
   likelihood). The synthetic likelihood is Gaussian in the gaps, with the target's own sigma plus the
   model's replicate variance of the mean (pooled from the fit check). Where even the best fit misses
   the targets by more than their sigmas (reduced chi-square above 1), the variances are scaled by that
   reduced chi-square: the usual allowance for model discrepancy, without which the ensemble would
   claim the model is exactly right at its best fit.
4. `size` sets are drawn by systematic resampling; each keeps its weight's provenance.

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
        return self._d().logpdf(np.atleast_2d(theta) - self.centre).sum(axis=1)

    def draw(self, n: int, seed: int) -> np.ndarray:
        return self.centre + self._d().ppf(sobol_uniforms(n, self.centre.size, seed))

    def sample(self, n: int, seed: int) -> np.ndarray:
        """Plain random draws (for comparisons such as the identification table)."""
        return self.centre + self._d().rvs(size=(n, self.centre.size), random_state=np.random.default_rng(seed))


def sobol_uniforms(n: int, d: int, seed: int) -> np.ndarray:
    """The first n of 2^m scrambled Sobol points in [0, 1)^d, kept away from 0 and 1."""
    m = max(0, int(np.ceil(np.log2(max(n, 1)))))
    return np.clip(qmc.Sobol(d, scramble=True, seed=seed).random_base2(m)[:n], 1e-9, 1 - 1e-9)


def _normal_logpdf(theta: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    return stats.multivariate_normal(mean, cov, allow_singular=True).logpdf(theta)


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


def systematic_resample(weights: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Indices of `size` draws by systematic resampling (low variance, reproducible)."""
    w = np.asarray(weights, dtype=float)
    w = w / w.sum()
    u0 = np.random.default_rng(seed).random() / size
    positions = u0 + np.arange(size) / size
    return np.minimum(np.searchsorted(np.cumsum(w), positions), w.size - 1)


def effective_sample_size(log_w: np.ndarray) -> float:
    w = np.exp(log_w - log_w.max())
    return float(w.sum() ** 2 / np.sum(w**2))


def tempered_beta(log_rest: np.ndarray, log_lik: np.ndarray, target_ess: float) -> float:
    """The largest beta in [0, 1] whose weights exp(log_rest + beta x log_lik) keep an effective sample
    size of at least `target_ess` (bisection; 1 if the full likelihood already does)."""
    if effective_sample_size(log_rest + log_lik) >= target_ess:
        return 1.0
    lo, hi = 0.0, 1.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if effective_sample_size(log_rest + mid * log_lik) >= target_ess:
            lo = mid
        else:
            hi = mid
    return lo


def sample_posterior(evaluate, theta_hat: np.ndarray, prior: Prior, observed: np.ndarray,
                     sigma: np.ndarray, model_var: np.ndarray, *, n_per_stage: int = 128, stages: int = 4,
                     spread: float = 0.3, size: int = 100, seed: int = 0, discrepancy: float = 1.0,
                     prior_share: float = 0.25, log=print) -> dict:
    """Defensive, tempered AMIS (see the module doc). `evaluate(thetas) -> simulated moment means` (rows).

    Returns a dict: thetas, log_weight, sims, stage, resampled (indices of the `size` members),
    ess (of the final weights), betas (the tempering of each stage's adaptation).
    """
    d = theta_hat.size
    sigma = sigma * np.sqrt(discrepancy)
    model_var = model_var * discrepancy
    n_prior = int(round(prior_share * n_per_stage))
    n_local = n_per_stage - n_prior
    normals: list[tuple[np.ndarray, np.ndarray, int]] = []  # (mean, cov, draws taken from it)
    local = (np.asarray(theta_hat, dtype=float), np.eye(d) * spread**2)
    thetas = np.empty((0, d))
    sims = np.empty((0, observed.size))
    stage_of = np.empty(0, dtype=int)
    betas: list[float] = []
    taken_prior = 0
    for k in range(stages):
        batch = []
        if n_prior:
            batch.append(prior.draw(n_prior, seed + 2 * k))
            taken_prior += n_prior
        if n_local:
            batch.append(normal_draws(n_local, *local, seed + 2 * k + 1))
            normals.append((*local, n_local))
        th = np.vstack(batch)
        thetas = np.vstack([thetas, th])
        sims = np.vstack([sims, evaluate(th)])
        stage_of = np.concatenate([stage_of, np.full(len(th), k + 1)])
        total = taken_prior + sum(n for _, _, n in normals)
        lp = prior.logpdf(thetas)
        parts = [np.log(n / total) + _normal_logpdf(thetas, m, c) for m, c, n in normals]
        if taken_prior:
            parts.append(np.log(taken_prior / total) + lp)
        mix = np.logaddexp.reduce(parts, axis=0)
        ll = log_likelihood(sims, observed, sigma, model_var)
        lw = lp + ll - mix
        ess = effective_sample_size(lw)
        beta = tempered_beta(lp - mix, ll, max(2.0, 0.25 * n_per_stage))
        betas.append(beta)
        log(f"posterior stage {k + 1}: {thetas.shape[0]} draws in all, effective sample size {ess:.1f} "
            f"(adapting at likelihood^{beta:.3f})")
        w = np.exp((lp - mix + beta * ll) - np.max(lp - mix + beta * ll))
        mean = np.average(thetas, axis=0, weights=w)
        cov = np.cov(thetas.T, aweights=w)
        local = (mean, 2.0 * cov + np.eye(d) * 0.03**2)
    idx = systematic_resample(np.exp(lw - lw.max()), size, seed + 100)
    return {"thetas": thetas, "log_weight": lw, "sims": sims, "stage": stage_of, "resampled": idx,
            "ess": effective_sample_size(lw), "betas": betas}


def identification(names: list[str], posterior_values: np.ndarray, prior_values: np.ndarray,
                   ess: float = float("inf")) -> pd.DataFrame:
    """Posterior against prior 90% width per parameter (natural scale); undetermined when the
    effective sample size is too small to tell."""
    rows = []
    for j, name in enumerate(names):
        post = np.quantile(posterior_values[:, j], [0.05, 0.5, 0.95])
        prior = np.quantile(prior_values[:, j], [0.05, 0.95])
        width_ratio = (post[2] - post[0]) / max(prior[1] - prior[0], 1e-12)
        rows.append({"parameter": name, "posterior_q05": post[0], "posterior_median": post[1],
                     "posterior_q95": post[2], "prior_q05": prior[0], "prior_q95": prior[1],
                     "width_ratio": width_ratio,
                     "identified": ("undetermined (effective sample size below 10)" if ess < 10 else
                                    "well" if width_ratio < 0.33 else "partly" if width_ratio < 0.75 else "weakly")})
    return pd.DataFrame(rows)


def members_table(names: list[str], values: np.ndarray) -> pd.DataFrame:
    df = pd.DataFrame(values, columns=names)
    df.insert(0, "member", np.arange(len(df)))
    return df
