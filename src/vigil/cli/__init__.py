"""The ``vigil`` command line: thin typer commands over the library (see :mod:`vigil.cli.main`)."""
