"""coffea processors of pairhunt (installed as ``pairhunt.processors``)."""
