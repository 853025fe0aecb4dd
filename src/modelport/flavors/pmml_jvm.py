"""The one JVM a process evaluates PMML in: JPype, started by the first PMML load.

Why JPype of jpmml_evaluator's three backends: it runs the JVM inside this process over
JNI, so there is no child process to start, watch and reap (Py4J's gateway is a separate
``java`` process spoken to over a local socket, and every evaluate pays a round trip),
and its classpath is given when the JVM starts rather than through a module-global
configuration that must happen before the first import (PyJNIus). It is also
jpmml_evaluator's default backend and ships wheels. A JVM cannot be restarted within a
process, so it lives until the process exits; every PMML model shares it.

The JVM starts with ``-Xrs``: without it Java installs its own SIGTERM and SIGINT
handlers, and a server's graceful shutdown (uvicorn drains on SIGTERM) would become the
JVM's immediate exit.
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
from pathlib import Path
from typing import Any

from modelport.errors import (
    ConfigurationError,
    ModelExecutionError,
    ModelportError,
    UnsupportedModelError,
)

_start_lock = threading.Lock()


def require_java() -> str:
    """The ``java`` launcher PMML work uses (JAVA_HOME's, else the one on PATH)."""
    home = os.environ.get("JAVA_HOME")
    candidates = [str(Path(home) / "bin" / "java")] if home else []
    candidates.append(shutil.which("java") or "")
    for path in candidates:
        if path and os.access(path, os.X_OK):
            return path
    raise ConfigurationError(
        "PMML needs a Java runtime (java on PATH, or JAVA_HOME): install one, e.g. "
        "`apt-get install default-jre-headless` (scripts/ensure-system-deps.sh does)")


def backend() -> Any:
    """This process's jpmml_evaluator backend, starting the JVM on first use."""
    with _start_lock:  # two models loading at once must not both start a JVM
        return _backend()


@functools.cache
def _backend() -> Any:
    require_java()
    try:
        import jpype
        from jpmml_evaluator import _classpath
        from jpmml_evaluator.jpype import JPypeBackend
    except ImportError as exc:
        raise UnsupportedModelError(
            f"the pmml flavor needs a library that is not installed ({exc.name}); "
            "install modelport[pmml]") from exc
    if not jpype.isJVMStarted():
        try:
            jvm = jpype.getDefaultJVMPath()
        except jpype.JVMNotFoundException as exc:
            raise ConfigurationError(
                f"PMML needs a Java runtime (java on PATH, or JAVA_HOME): {exc}") from exc
        jpype.startJVM(jvm, "-Xrs", classpath=_classpath([]), convertStrings=False)
    try:
        return JPypeBackend()
    except Exception as exc:  # a JVM started by someone else, without JPMML's classes
        raise ConfigurationError(f"the JVM in this process cannot run JPMML: {exc}") from exc


def build_evaluator(xml: bytes) -> Any:
    """A verified JPMML evaluator for a PMML document."""
    from jpmml_evaluator import make_evaluator

    jvm = backend()
    try:
        # verify() replays the document's own ModelVerification rows, when it has any.
        return make_evaluator(xml, backend=jvm).verify()
    except Exception as exc:  # Java exceptions, wrapped by jpmml_evaluator
        raise java_error(exc, "JPMML cannot load this PMML document",
                         UnsupportedModelError) from exc


def java_error(exc: BaseException, what: str,
               kind: type[ModelportError] = ModelExecutionError) -> ModelportError:
    """A modelport error for a failure inside the JVM, with Java's own message."""
    name = getattr(exc, "className", None) or type(exc).__name__
    message = getattr(exc, "message", None) or str(exc)
    return kind(f"{what}: {name}: {str(message)[:500]}")


__all__ = ["backend", "build_evaluator", "java_error", "require_java"]
