"""Experiments: benchmark runner, configs, metrics, plots, performance suite and the ``adsim`` CLI."""
