"""The remote control plane: the registry and rollout operations over HTTP under ``/api/``.

A composition layer like ``dashboard/``: ``api`` mounts routes into ``modelport serve``
(``factory``), ``remote`` is the client the CLI and ``modelport.connect`` use, and
``facade`` is the one interface both a local registry and a remote server offer, so a
CLI command is written once.
"""
