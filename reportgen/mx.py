"""The one place mxnet is imported, so the environment it reads at import is set first.

MXNet reads OMP_NUM_THREADS once, at import. Its default on a 2-vCPU machine was 1 thread,
which made the network ~1.8x slower (../shared/mxnet-notes.md). We use every core unless
the user chose a number.
"""

import ctypes
import os

# A Dask nanny sets OMP_NUM_THREADS=1 in its workers (distributed.nanny.pre-spawn-environ),
# which would leave a worker on a big machine with one MXNet thread: REPORTGEN_MXNET_THREADS,
# which the nanny passes through, wins (reportgen sets it for --workers; README).
if os.environ.get("REPORTGEN_MXNET_THREADS"):
    os.environ["OMP_NUM_THREADS"] = os.environ["REPORTGEN_MXNET_THREADS"]
os.environ.setdefault("OMP_NUM_THREADS", str(len(os.sched_getaffinity(0)) or 1))
os.environ.setdefault("MXNET_STORAGE_FALLBACK_LOG_VERBOSE", "0")


def keep_freed_memory_for_reuse() -> bool:
    """Have glibc's malloc serve every allocation from its heap and keep what is freed
    there, instead of mapping each large block afresh and unmapping it when freed. Each
    model's weights (550 MB for a VGG) otherwise arrive in fresh pages, faulted in one by
    one, right after the previous model's were handed back, and so do MXNet's and numpy's
    large temporaries. Measured (alternated runs, seeded weights): 16 images x 3 models
    21.6 -> 20.4 s (loading 1.27 -> 0.89 s, the networks 16.9 -> 16.2 s), 100 images
    109.6 -> 108.1 s. The price is memory: the heap is trimmed only when 2 GB lie free at
    its top, so peak RSS is 0.3-0.4 GB higher (16 or 100 images x 3 models: 1.67 -> 2.0
    GB; resnet152 alone 1.33 -> 1.74 GB at 100 images, 1.73 GB at 1,000).
    REPORTGEN_MALLOC=system: not applied; =heap: applied. Otherwise applied unless the
    environment sets MALLOC_MMAP_MAX_ or MALLOC_TRIM_THRESHOLD_ (a user's choice, or a
    Dask nanny's for the workers of a cluster reportgen did not start). Never where the
    C library has no mallopt. Returns whether it was applied."""
    choice = os.environ.get("REPORTGEN_MALLOC")
    if choice == "system" or (choice != "heap" and ("MALLOC_MMAP_MAX_" in os.environ
                                                    or "MALLOC_TRIM_THRESHOLD_" in os.environ)):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_max = -1, -4      # glibc's malloc.h
    return bool(mallopt(m_mmap_max, 0)) and bool(mallopt(m_trim_threshold, 2**31 - 1))


keep_freed_memory_for_reuse()

import mxnet as mx  # noqa: E402
from mxnet import autograd, gluon  # noqa: E402
from mxnet.gluon import nn  # noqa: E402

__all__ = ["mx", "autograd", "gluon", "nn"]
