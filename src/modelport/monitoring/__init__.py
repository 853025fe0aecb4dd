"""Watching deployed models: reference profiles at registration, drift of live windows.

``profile`` builds the reference profile a version carries in its bundle (a leaf module:
the registry facade uses it at registration, so it imports nothing above ``errors``);
``drift`` compares a live window with it, using the tests in ``stattests``.
"""
