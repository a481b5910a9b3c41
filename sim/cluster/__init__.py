"""Running sweeps on clusters (SLURM, Ray): the launchers' logic, at the edge of the package.

The Hydra plugin classes live in `hydra_plugins.skillsim_launchers` (where Hydra looks for them) and
call into here; the model core never imports this package.
"""


def register_launchers() -> None:
    """Make `hydra/launcher=slurm` composable and instantiable in this process.

    Hydra finds plugins by listing the `hydra_plugins` namespace, which misses an editable install
    (setuptools' import hook cannot be listed), so the config schema and the class are registered
    here as well; an installed wheel is also found by Hydra's own scan. Costs about 30 ms, once.
    """
    from hydra.core.plugins import Plugins

    from hydra_plugins.skillsim_launchers import slurm  # registers the config schema

    cls = slurm.SkillsimSlurmLauncher
    Plugins.instance().class_name_to_class.setdefault(f"{cls.__module__}.{cls.__name__}", cls)
