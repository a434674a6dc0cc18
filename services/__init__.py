"""Servicepuls services. Before any of them is imported: a compiled module whose source changed
since it was built is removed, so the source that is there is the code that runs."""

from services._native import drop_stale_build

drop_stale_build()
