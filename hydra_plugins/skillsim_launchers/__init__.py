"""skillsim's Hydra launcher plugins (Hydra finds plugins only under the `hydra_plugins` namespace).

The work is done in `sim.cluster`; these modules only register the launcher classes and their config
schemas, so Hydra's plugin scan stays cheap.
"""
