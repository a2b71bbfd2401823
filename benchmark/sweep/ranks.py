"""Multi-process sweeps whose ranks are separate programs: Lightning's own launcher (``--devices N`` re-runs
the command once per extra device), torchrun, SLURM, or one command per node.

Rank 0 decides and the other ranks follow. Rank 0 alone reads the results folder, claims trials, picks
the seed reruns and reads checkpoints; before each trial it sends every other rank the trial itself, its
starting weights (the warm start) and, when it resumes, the checkpoint, over a gloo group. The other ranks
therefore need neither a view of rank 0's results folder nor a filesystem shared with it, and a trial that
another sweep has claimed is simply never sent. Only the tokenized corpus must agree, and it is checked.
"""

from __future__ import annotations

from contextlib import contextmanager

import lightning as L
import torch.distributed as dist
from lightning.fabric.strategies import DDPStrategy

from benchmark import BenchError
from benchmark.data.tokens import PreparedData
from benchmark.results.store import ResultsStore
from benchmark.trial.checkpoint import Checkpoint
from benchmark.trial.hardware import Hardware
from benchmark.trial.launch import quiet_lightning
from benchmark.trial.run import run_trial


class Ranks:
    """The ranks of one sweep, connected before its first trial.

    ``Ranks(hw)`` starts the other processes where this one is the first of a Lightning launch (they re-run
    the same command), joins the process group that every trial's Trainer then reuses, and opens a gloo
    group for rank 0's messages (pickled CPU objects whatever the training backend)."""

    def __init__(self, hw: Hardware) -> None:
        quiet_lightning()
        fabric = L.Fabric(accelerator=hw.accelerator, devices=hw.devices, num_nodes=hw.num_nodes,
                          strategy=DDPStrategy(start_method="popen"))
        fabric.launch()
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.group = dist.new_group(backend="gloo")
        self.in_trial = False  # rank 0: a trial is running, so the other ranks are inside its collectives

    @property
    def leader(self) -> bool:
        return self.rank == 0

    def send(self, obj) -> None:
        """Rank 0: every other rank's next ``receive`` returns ``obj``."""
        assert self.leader
        dist.broadcast_object_list([obj], src=0, group=self.group)

    @contextmanager
    def lead(self, trial, start: Checkpoint | None):
        """Rank 0: the other ranks run ``trial`` from ``start`` alongside the block."""
        self.send((trial, start))
        self.in_trial = True
        yield
        self.in_trial = False  # not reached when the trial raised: its collectives may be half done

    def finish(self) -> None:
        """Rank 0: release the other ranks and close the connection (unless a failed trial left them waiting
        inside it: they then fail with the lost connection when this process exits)."""
        if self.in_trial:
            self.close(together=False)
        else:
            self.send(None)
            self.close()

    def close(self, together: bool = True) -> None:
        """Every rank, at the end of the sweep: leave the process groups. Leaving them to the interpreter's
        exit lets gloo's threads abort the process ("terminate called without an active exception"), which
        failed a CI run with exit status 134 after all its trials had finished. ``together``: the other
        ranks are here too, so that none closes while another is still reading its last message."""
        if not dist.is_initialized():
            return
        if together:
            dist.barrier(group=self.group)
        dist.destroy_process_group()  # the default group: every group with it, the control group included

    def receive(self):
        assert not self.leader
        box = [None]
        dist.broadcast_object_list(box, src=0, group=self.group)
        return box[0]

    def check_same(self, value, what: str, hint: str) -> None:
        """Every rank holds the same ``value``, or every rank raises the same one-line error."""
        values = [None] * self.world_size
        dist.all_gather_object(values, value, group=self.group)
        differ = [r for r, v in enumerate(values) if v != values[0]]
        if differ:
            raise BenchError(f"rank(s) {', '.join(map(str, differ))} hold another {what} than rank 0; {hint}")


class Connection:
    """The link to the other ranks, made on the first call: rank 0 calls it (and so launches them, where it
    is the launcher) only when a trial needs them. Every rank must have tokenized the same corpus."""

    def __init__(self, hw: Hardware, prepared: PreparedData) -> None:
        self.hw, self.prepared, self.ranks = hw, prepared, None

    def __call__(self) -> Ranks:
        if self.ranks is None:
            ranks = Ranks(self.hw)
            try:
                ranks.check_same(self.prepared.info.get("tokens_sha256"), "tokenized corpus",
                                 "give every node the same --data and OPTBENCH_CACHE folder, or a copy of rank 0's")
            except BenchError:
                ranks.close()  # every rank raises the same error here
                raise
            self.ranks = ranks
        return self.ranks

    def finish(self) -> None:
        """Rank 0, at the end of the sweep: release the other ranks, if they were ever connected."""
        if self.ranks is not None:
            self.ranks.finish()


def follow(ranks: Ranks, prepared: PreparedData, store: ResultsStore, hw: Hardware) -> list[dict]:
    """A rank other than 0: run each trial rank 0 sends, from the start it sends, until it sends None."""
    while (message := ranks.receive()) is not None:
        trial, start = message
        run_trial(trial, prepared, store, hw, start)
    ranks.close()
    return []
