"""The norms domain: business calendar, norm clock and catalog. No I/O here."""
