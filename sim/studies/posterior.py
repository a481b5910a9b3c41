"""Parameter uncertainty: an ensemble of behavioural parameter sets consistent with the targets.

Method: sampling-importance-resampling around the simulated-method-of-moments fit, with one
adaptation step (population Monte Carlo; Cappé et al. 2004), in the calibration's logit coordinates.
Why this and not ABC-SMC or history matching: with 13 parameters, a handful of targets and about a
second per evaluation, ABC-SMC needs tens of thousands of runs and history matching an emulator per
wave; importance sampling around a fit that is already there needs a few hundred runs, and its
effective sample size says plainly how well the proposal covered the posterior.

1. Stage 1 draws from a normal around the fit (scale `spread` logit units per parameter; scrambled
   Sobol points mapped through the normal quantile, so the draws fill the space evenly).
2. Stage 2 draws from a normal with the weighted mean and (inflated) covariance of stage 1.
3. Every draw is weighted by prior x synthetic likelihood / mixture proposal (deterministic-mixture
   weights over both stages). The synthetic likelihood is Gaussian in the standardised gaps, with the
   target's own sigma plus the model's replicate variance of the mean (pooled from the fit check).
   The prior is the calibration's weak pull: normal in logit coordinates, variance 1 / (2 x 0.05).
   Where even the best fit misses the targets by more than their sigmas (reduced chi-square above
   1), the variances are scaled by that reduced chi-square: the usual allowance for model
   discrepancy, without which the ensemble would claim the model is exactly right at its best fit.
4. `size` sets are drawn by systematic resampling; each keeps its weight's provenance.

Identification: for each parameter the ratio of the posterior's 90% width to the prior's, on the
natural scale (1: the targets say nothing about it; near 0: pinned down).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from scipy.stats import qmc

PRIOR_PULL = 0.05  # the objective's pull towards the assumed values (sim.studies.calibrate)


def _proposal_logpdf(theta: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    return stats.multivariate_normal(mean, cov, allow_singular=True).logpdf(theta)


def normal_draws(n: int, mean: np.ndarray, cov: np.ndarray, seed: int) -> np.ndarray:
    """n draws of N(mean, cov) from scrambled Sobol points (space-filling, reproducible)."""
    d = mean.size
    u = qmc.Sobol(d, scramble=True, seed=seed).random(n)
    z = stats.norm.ppf(np.clip(u, 1e-9, 1 - 1e-9))
    chol = np.linalg.cholesky(cov + 1e-12 * np.eye(d))
    return mean + z @ chol.T


def log_likelihood(sim_mean: np.ndarray, observed: np.ndarray, sigma: np.ndarray, model_var: np.ndarray) -> np.ndarray:
    """Gaussian synthetic log-likelihood of each row of simulated moment means."""
    var = sigma**2 + model_var
    return -0.5 * np.sum((sim_mean - observed) ** 2 / var, axis=1)


def log_prior(theta: np.ndarray, theta0: np.ndarray) -> np.ndarray:
    return -PRIOR_PULL * np.sum((theta - theta0) ** 2, axis=1)


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


def sample_posterior(evaluate, theta_hat: np.ndarray, theta0: np.ndarray, observed: np.ndarray,
                     sigma: np.ndarray, model_var: np.ndarray, *, n_per_stage: int = 250,
                     spread: float = 0.5, size: int = 100, seed: int = 0, discrepancy: float = 1.0,
                     log=print) -> tuple:
    """Two-stage importance sampling; `evaluate(thetas) -> simulated moment means` (rows).

    Returns (thetas, log_weights, sim_means, stages, resampled indices).
    """
    d = theta_hat.size
    sigma = sigma * np.sqrt(discrepancy)
    model_var = model_var * discrepancy
    mean1, cov1 = theta_hat, np.eye(d) * spread**2
    th1 = normal_draws(n_per_stage, mean1, cov1, seed)
    sim1 = evaluate(th1)
    ll1 = log_likelihood(sim1, observed, sigma, model_var)
    lw1 = log_prior(th1, theta0) + ll1 - _proposal_logpdf(th1, mean1, cov1)
    w1 = np.exp(lw1 - lw1.max())
    log(f"posterior stage 1: {n_per_stage} draws, effective sample size {effective_sample_size(lw1):.1f}")
    mean2 = np.average(th1, axis=0, weights=w1)
    cov2 = np.cov(th1.T, aweights=w1) if effective_sample_size(lw1) > d else cov1 * 0.5
    cov2 = 1.5 * cov2 + np.eye(d) * 0.05**2  # inflated, so the second stage does not miss the tails
    th2 = normal_draws(n_per_stage, mean2, cov2, seed + 1)
    sim2 = evaluate(th2)
    thetas = np.vstack([th1, th2])
    sims = np.vstack([sim1, sim2])
    mix = np.logaddexp(_proposal_logpdf(thetas, mean1, cov1), _proposal_logpdf(thetas, mean2, cov2)) - np.log(2)
    lw = log_prior(thetas, theta0) + log_likelihood(sims, observed, sigma, model_var) - mix
    ess = effective_sample_size(lw)
    log(f"posterior stage 2: {2 * n_per_stage} draws in all, effective sample size {ess:.1f}")
    idx = systematic_resample(np.exp(lw - lw.max()), size, seed + 2)
    stages = np.repeat([1, 2], n_per_stage)
    return thetas, lw, sims, stages, idx, ess


def identification(names: list[str], posterior_values: np.ndarray, prior_values: np.ndarray) -> pd.DataFrame:
    """Posterior against prior 90% width per parameter (natural scale)."""
    rows = []
    for j, name in enumerate(names):
        post = np.quantile(posterior_values[:, j], [0.05, 0.5, 0.95])
        prior = np.quantile(prior_values[:, j], [0.05, 0.95])
        width_ratio = (post[2] - post[0]) / max(prior[1] - prior[0], 1e-12)
        rows.append({"parameter": name, "posterior_q05": post[0], "posterior_median": post[1],
                     "posterior_q95": post[2], "prior_q05": prior[0], "prior_q95": prior[1],
                     "width_ratio": width_ratio,
                     "identified": "well" if width_ratio < 0.33 else "partly" if width_ratio < 0.75 else "weakly"})
    return pd.DataFrame(rows)


def members_table(names: list[str], values: np.ndarray) -> pd.DataFrame:
    df = pd.DataFrame(values, columns=names)
    df.insert(0, "member", np.arange(len(df)))
    return df

