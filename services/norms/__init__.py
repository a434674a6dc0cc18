"""Norms: live service-norm clocks (servicenormen) in business time, with compliance per norm."""
