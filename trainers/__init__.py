"""Training recipes (dense and inference-free sparse) on top of sentence-transformers.

Not implemented yet: see the open issues for the dense (GIST + TAS-Balanced + distillation) and
sparse trainers. ``winnow train`` reports this instead of pretending to train.
"""

from __future__ import annotations
