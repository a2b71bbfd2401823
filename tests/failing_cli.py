"""The real command line (``benchmark.cli.main``, what the ``bench`` script runs) with one more backend
registered, as a plugin would: ``boom``, AdamW whose third step raises at K = 4 unless $BOOM_OFF is set."""

import os
import sys

from optimizers.first_order.adamw import AdamW
from optimizers.registry import register


@register
class Boom(AdamW):
    name = "boom"
    description = "AdamW whose third step raises at K = 4"

    def step(self, ctx):
        if self.step_count == 2 and len(ctx.microbatches) == 4 and not os.environ.get("BOOM_OFF"):
            raise RuntimeError("boom: the third step of K=4 raises")
        return super().step(ctx)


if __name__ == "__main__":
    from benchmark.cli import main

    sys.exit(main())
