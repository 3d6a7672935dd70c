"""``python -m retrieval.cli``: the ``winnow`` command (what ``winnow train --nproc`` runs under torchrun)."""

from __future__ import annotations

from retrieval.cli import main

raise SystemExit(main())
