"""The ``modelport`` command line: ``modelport <noun> <verb>`` plus top-level verbs."""
