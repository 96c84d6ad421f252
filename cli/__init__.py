"""The ``garvideo`` command line (installed under the import name ``garvideo_cli``)."""
