"""Subcommands of the ``metaloop`` CLI, one module each (see :mod:`metaloop.cli`)."""
