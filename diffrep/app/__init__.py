"""The command-line application: ``diffrep demo``, ``diffrep curve`` and their report."""
