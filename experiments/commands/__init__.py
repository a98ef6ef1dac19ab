"""``adsim`` subcommands, one module each (see ``experiments.cli``)."""
