"""The one place mxnet is imported, so the environment it reads at import is set first.

MXNet reads OMP_NUM_THREADS once, at import. Its default on a 2-vCPU machine was 1 thread,
which made the network ~1.8x slower (../shared/mxnet-notes.md). We use every core unless
the user chose a number.
"""

import os

# A Dask nanny sets OMP_NUM_THREADS=1 in its workers (distributed.nanny.pre-spawn-environ),
# which would leave a worker on a big machine with one MXNet thread: REPORTGEN_MXNET_THREADS,
# which the nanny passes through, wins (reportgen sets it for --workers; README).
if os.environ.get("REPORTGEN_MXNET_THREADS"):
    os.environ["OMP_NUM_THREADS"] = os.environ["REPORTGEN_MXNET_THREADS"]
os.environ.setdefault("OMP_NUM_THREADS", str(len(os.sched_getaffinity(0)) or 1))
os.environ.setdefault("MXNET_STORAGE_FALLBACK_LOG_VERBOSE", "0")

import mxnet as mx  # noqa: E402
from mxnet import autograd, gluon  # noqa: E402
from mxnet.gluon import nn  # noqa: E402

__all__ = ["mx", "autograd", "gluon", "nn"]
