"""``python -m retrieval`` runs the winnow CLI."""

from __future__ import annotations

import sys

from retrieval.cli import main

sys.exit(main())
