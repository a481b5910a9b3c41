"""`hydra/launcher=slurm`: Hydra's submitit SLURM launcher with what a real cluster needs (sim.cluster.slurm).

- no time or memory request unless asked for (a stock cluster's partition limits apply);
- a job the scheduler kills (scancel, time limit, out of memory, preemption, node failure) becomes a
  FAILED record with the scheduler's state, and the other jobs finish and aggregate;
- Ctrl-C or SIGTERM cancels the jobs this command queued;
- sweeps larger than the cluster's MaxArraySize go out as several arrays;
- job states come from squeue, so a cluster without accounting (no sacct) works, quietly;
- sbatch's refusals are one line naming the setting to change, and a new sweep folder is removed.
"""

# No `from __future__ import annotations` here: Hydra's plugin scan runs this module before putting it
# in sys.modules, and a dataclass with string annotations then fails to build ('NoneType' object has
# no attribute '__dict__'), which broke every command that started Hydra without importing sim.cluster
# first (tests/test_compose_cache.py::test_hydras_plugin_scan_loads_the_slurm_launcher).
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn
from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher


class SkillsimSlurmLauncher(SlurmLauncher):
    """Submits, waits and records as described in the module doc; each job runs as upstream's does."""

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from sim.cluster.slurm import launch

        return launch(self, job_overrides, initial_job_idx)

    def __call__(self, *args: Any, **kwargs: Any) -> JobReturn:
        """One job, on its node: as upstream's, with the scheduler's signals handled (sim.cluster.slurm.on_node)."""
        from sim.cluster.slurm import on_node

        on_node(self.params)
        return super().__call__(*args, **kwargs)


@dataclass
class SkillsimSlurmConf(SlurmQueueConf):
    """The submitit SLURM schema, with the requests a stock cluster may refuse left unset."""

    _target_: str = "hydra_plugins.skillsim_launchers.slurm.SkillsimSlurmLauncher"
    #: minutes; None: no --time, the partition's default time limit applies
    timeout_min: Optional[int] = None  # type: ignore[assignment]
    #: jobs per array; None: the cluster's MaxArraySize (scontrol show config)
    max_array_size: Optional[int] = None
    #: seconds between two looks at the queue (one squeue call for all the sweep's jobs)
    poll_s: float = 10.0


ConfigStore.instance().store(group="hydra/launcher", name="skillsim_slurm", node=SkillsimSlurmConf,
                             provider="skillsim")
