"""Watching deployed models: the prediction log, delayed labels, realized metrics, and
drift of live windows against the reference profile each version carries.

``profile`` builds the reference profile a version carries in its bundle (a leaf module:
the registry facade uses it at registration, so it imports nothing above ``errors``);
``drift`` compares a live window with it, using the tests in ``stattests``;
``predlog`` and ``labels`` write what the server saw and the truth that came later;
``query`` and ``realized`` read them back with DuckDB.
"""
