"""The joint model's inference forward pass as TorchScript graphs, for serving.

Why: eager PyTorch gives up Python's GIL around every operator and takes it back after, about
160 times per forward pass of the example bot. A server parses in a worker thread while its
event loop runs Python; each time the parsing thread wants the GIL back it waits until the loop
lets go, up to `sys.getswitchinterval()` (5 ms). Under load a batch that parses in 14 ms alone
took 70 ms, and the parsing thread, busy 99% of the time, capped the server's throughput. A
traced graph runs all its operators in C++ after one release (a forward pass beside a thread
spinning in Python: 850 ms eager, 26 ms traced).

Tracing records one path through the Python code, so there are two graphs: the encoder skips
masks and sequence packing when a batch has no padding (e.g. a single message), and pads
otherwise. The graphs share the model's parameters. (`torch.jit` is deprecated in favour of
`torch.export`, which has no interpreter that releases the GIL once per call; torch is pinned.)
"""

from __future__ import annotations

import warnings
import torch
from torch import nn

from slm.features import Batch
from slm.joint import JointModel, JointOutput


class _Tensors(nn.Module):
    """The joint model's inference call with the batch as plain tensors, as tracing needs."""

    def __init__(self, model: JointModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        output, _ = self.model(Batch(*tensors))
        return output.intent_logits, output.tag_emissions


class TracedJoint:
    """Call it like the eval-mode model: ``traced(batch) -> JointOutput``, without a loss.

    ``padded`` must hold padding (texts of different lengths) and ``unpadded`` none (e.g. one
    text); they only steer which path is recorded, not the shapes later batches may have.
    """

    def __init__(self, model: JointModel, padded: Batch, unpadded: Batch) -> None:
        if bool(padded.mask.all()) or not bool(unpadded.mask.all()):
            raise ValueError("trace examples: `padded` needs padding and `unpadded` none")
        if model.training:
            raise ValueError("trace the model in eval mode: dropout would be recorded")
        wrapper = _Tensors(model)
        with torch.no_grad(), warnings.catch_warnings():
            # Tracing warns about every Python value it freezes, e.g. the padding test the two graphs exist for.
            warnings.simplefilter("ignore")
            self.graphs = {
                needs_mask: torch.jit.trace(wrapper, example.tensors(), check_trace=False)
                for needs_mask, example in ((True, padded), (False, unpadded))
            }

    def __call__(self, batch: Batch) -> JointOutput:
        logits, emissions = self.graphs[not bool(batch.mask.all())](*batch.tensors())
        return JointOutput(logits, emissions)
