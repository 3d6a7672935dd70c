"""Line-by-line UTF-8 reading that names the file and line of a bad byte, and counted warnings.

A counted warning is one log line per kind of tolerated defect in one file: how many records have
it and the first few of them, so a large public corpus with a handful of odd records loads, and the
reader still learns what was odd and where.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

EXAMPLES = 3
_LOGGED: set[tuple[str, str, int, tuple[str, ...]]] = set()


def iter_text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` for each line of a UTF-8 file (a leading byte-order mark is dropped).

    Raises:
        FileNotFoundError: ``path`` is not a file.
        ValueError: a line is not valid UTF-8; the message names the file, line and byte column.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad = raw[exc.start : exc.start + 1].hex()
                raise ValueError(
                    f"{path}:{line_no}: not valid UTF-8 (byte 0x{bad} at column {exc.start + 1}); "
                    "expected UTF-8 text: re-encode the file, e.g. iconv -f latin1 -t utf-8"
                ) from exc
            if line_no == 1:
                line = line.removeprefix("\ufeff")
            yield line_no, line


def warn_counted(logger: logging.Logger, where: str | Path, what: str, examples: Sequence[str]) -> None:
    """Log ``where: N what (first: a, b, c)`` when ``examples`` (all the cases) is not empty.

    The same warning about the same file is logged once per process.

    Example:
        >>> warn_counted(logger, "corpus.jsonl", "documents with an empty title and text", ["line 3 'd7'"])
    """
    if not examples:
        return
    key = (str(where), what, len(examples), tuple(examples[:EXAMPLES]))
    if key in _LOGGED:  # the same file read again (checked before a model loads, then indexed)
        return
    _LOGGED.add(key)
    first = ", ".join(examples[:EXAMPLES]) + (", ..." if len(examples) > EXAMPLES else "")
    logger.warning("%s: %d %s (first: %s)", where, len(examples), what, first)
