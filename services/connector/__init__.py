"""The connector: Servicepuls as a Notificaties API subscriber of Open Zaak and Open Klant."""
