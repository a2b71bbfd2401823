"""First-order backends (AdamW, Muon, SOAP) on one shared body, ``FirstOrder``: gradients accumulated over the
step's micro-batches, one all-reduce, clipping, the schedule. A plugin subclasses it from here."""

from optimizers.first_order.base import FirstOrder, FirstOrderHyper, adamw_kernel

__all__ = ["FirstOrder", "FirstOrderHyper", "adamw_kernel"]
