"""`python -m services.connector`: serve the callback (with its workers), or manage the
abonnement and the norms from the catalogue. `--help` lists the commands."""

from __future__ import annotations

from services.connector.entrypoints.cli import main

if __name__ == "__main__":
    main()
