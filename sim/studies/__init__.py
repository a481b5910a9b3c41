"""Studies: everything that runs the model many times (calibration, forecast ensembles, backtests).

They share one way to run a batch of configurations in memory (`sim.studies.batch.run_batch`), on
common random numbers where a study pairs runs. The model core never imports from here.
"""
