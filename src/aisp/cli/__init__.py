"""The ``aisp`` command line (Typer). Each command lives in its own module; heavy imports stay
inside the command functions so that ``aisp --help`` is fast."""
