"""Where a model's weights come from: the Gluon model store, a local .params file, or a
seeded random initialization.

The pretrained path follows the Gluon model store's own conventions (file name
``{zoo_name}-{sha1[:8]}.params``, the SHA-1 table in ``mxnet.gluon.model_zoo.model_store``,
archives at ``{MXNET_GLUON_REPO}gluon/models/{file}.zip``) so that a cache filled by MXNet
itself, or by the original notebook, is reused as is. The download is ours rather than
``model_store.get_model_file`` because MXNet's has no timeout and can leave partial files.
"""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import digest_cache
from .errors import WeightsError
from .models import ModelSpec, loaded_arrays_adopted

DEFAULT_REPO_URL = "https://apache-mxnet.s3-accelerate.dualstack.amazonaws.com/"
DOWNLOAD_TIMEOUT_S = 30.0      # per network operation (connect, each read)
DOWNLOAD_DEADLINE_S = 3600.0   # the whole file: 550 MB at 150 kB/s
_CHUNK = 1 << 20


@dataclass(frozen=True)
class WeightSource:
    """What the report and results.json say about a model's weights."""

    kind: str                  # "pretrained" | "params" | "untrained"
    path: str | None = None    # the .params file used, if any
    sha1: str | None = None    # its SHA-1, if any
    seed: int | None = None    # the initialization seed, for "untrained"

    @property
    def meaningful(self) -> bool:
        return self.kind != "untrained"


def default_model_root() -> Path:
    mxnet_home = os.environ.get("MXNET_HOME")
    base = Path(mxnet_home) if mxnet_home else Path("~/.mxnet").expanduser()
    return base / "models"


def repo_url() -> str:
    url = os.environ.get("MXNET_GLUON_REPO", DEFAULT_REPO_URL)
    return url if url.endswith("/") else url + "/"


def expected_sha1(spec: ModelSpec) -> str:
    from mxnet.gluon.model_zoo import model_store  # the zoo's table of published weights

    return model_store._model_sha1[spec.zoo_name]


def expected_file_name(spec: ModelSpec) -> str:
    return f"{spec.zoo_name}-{expected_sha1(spec)[:8]}.params"


def sha1_of(path: Path) -> str:
    return digest_cache.sha1_of(path)


def _ways_out(spec: ModelSpec) -> str:
    return (
        f"download it where this machine can reach the model store, or use "
        f"--params {spec.name}=FILE, --model-root DIR, MXNET_GLUON_REPO=MIRROR, "
        f"or --weights untrained for a smoke run"
    )


def cached_pretrained(spec: ModelSpec, model_root: Path) -> tuple[Path, str]:
    """(path, status) of the cached zoo file: status is verified, missing or corrupt."""
    path = Path(model_root) / expected_file_name(spec)
    if not path.is_file():
        return path, "missing"
    return path, "verified" if sha1_of(path) == expected_sha1(spec) else "corrupt"


def resolve_pretrained(spec: ModelSpec, model_root: Path, *, download: bool = True,
                       on_progress=None) -> WeightSource:
    """The verified zoo file for `spec`, downloading it into `model_root` if needed."""
    path, status = cached_pretrained(spec, model_root)
    if status == "verified":
        return WeightSource("pretrained", str(path), expected_sha1(spec))
    if not download:
        raise WeightsError(f"{spec.name}: pretrained weights {path.name} are {status} in {model_root}",
                           hint=_ways_out(spec))
    with _download_lock(spec, Path(model_root)):
        # Another process may have fetched it while we waited for the lock.
        if cached_pretrained(spec, model_root)[1] != "verified":
            try:
                fetch_pretrained(spec, model_root, on_progress=on_progress)
            except WeightsError as exc:
                if status != "corrupt":
                    raise
                raise WeightsError(
                    f"{spec.name}: cached {path} is corrupt (SHA-1 is not "
                    f"{expected_sha1(spec)}), and fetching it again failed: "
                    f"{exc.message.removeprefix(spec.name + ': ')}",
                    hint=f"delete {path} and run 'reportgen fetch -m {spec.name}' where the "
                         f"model store is reachable; or " + _ways_out(spec)) from None
    return WeightSource("pretrained", str(path), expected_sha1(spec))


@contextlib.contextmanager
def _download_lock(spec: ModelSpec, model_root: Path):
    """One download at a time per model folder: an flock on the folder itself (no lock
    file left behind); the kernel drops it with a killed process. Waiting is bounded by
    the other process's own download deadline."""
    try:
        model_root.mkdir(parents=True, exist_ok=True)
        fd = os.open(model_root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise WeightsError(f"{spec.name}: cannot write in model folder {model_root}: {exc.strerror}",
                           hint=_ways_out(spec)) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def fetch_pretrained(spec: ModelSpec, model_root: Path, on_progress=None) -> Path:
    """Download, unpack and verify the zoo file; only a verified file is ever put in place.

    on_progress(bytes_done, bytes_total_or_None) is called as the download goes."""
    file_name = expected_file_name(spec)
    target = Path(model_root) / file_name
    url = f"{repo_url()}gluon/models/{file_name[: -len('.params')]}.zip"
    try:
        Path(model_root).mkdir(parents=True, exist_ok=True)
        tmp_dir = Path(tempfile.mkdtemp(prefix=f".{file_name}.", dir=model_root))
    except OSError as exc:
        raise WeightsError(f"{spec.name}: cannot write in model folder {model_root}: {exc.strerror}",
                           hint=_ways_out(spec)) from None
    try:
        archive = tmp_dir / "download.zip"
        try:
            _download(url, archive, on_progress)
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise WeightsError(
                f"{spec.name}: cannot download {file_name} from {url} ({reason}) "
                f"and it is not in {model_root}",
                hint=_ways_out(spec),
            ) from None
        try:
            with zipfile.ZipFile(archive) as zf:
                zf.extract(file_name, tmp_dir)
        except (zipfile.BadZipFile, KeyError):
            raise WeightsError(
                f"{spec.name}: {url} did not serve a zip archive holding {file_name}",
                hint="check MXNET_GLUON_REPO points at a Gluon model-store mirror",
            ) from None
        unpacked = tmp_dir / file_name
        got = digest_cache.hash_file(unpacked)
        if got != expected_sha1(spec):
            raise WeightsError(
                f"{spec.name}: downloaded {file_name} has SHA-1 {got}, expected "
                f"{expected_sha1(spec)}",
                hint="the mirror serves a different file; try another MXNET_GLUON_REPO",
            )
        os.replace(unpacked, target)
        return target
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def _download(url: str, path: Path, on_progress=None) -> None:
    """Stream `url` to `path`. Each network operation times out after DOWNLOAD_TIMEOUT_S,
    and the whole download after DOWNLOAD_DEADLINE_S: a mirror that trickles bytes cannot
    hold a nightly job forever."""
    deadline = time.monotonic() + DOWNLOAD_DEADLINE_S
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, open(path, "wb") as out:
        total = response.headers.get("Content-Length")
        total = int(total) if total and total.isdigit() else None
        done = 0
        while chunk := response.read1(_CHUNK):   # read1: returns what has arrived
            out.write(chunk)
            done += len(chunk)
            if on_progress:
                on_progress(done, total)
            if time.monotonic() > deadline:
                raise TimeoutError(f"download took longer than {DOWNLOAD_DEADLINE_S:.0f} s")
        if total is not None and done != total:
            raise http.client.IncompleteRead(b"", total - done)


def resolve_params_file(spec: ModelSpec, path: Path) -> WeightSource:
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{spec.name}: params file {path} does not exist",
                           hint=f"pass an existing Gluon .params file as --params {spec.name}=FILE")
    return WeightSource("params", str(path.resolve()), sha1_of(path))


def load_network(spec: ModelSpec, source: WeightSource, build):
    """A network of `spec` with the weights of `source` (build: ModelSpec -> Block), for
    input gradients only: no weight has a gradient buffer."""
    from .mx import mx

    net = build(spec)
    # Set before the weights arrive: with the default grad_req='write', Gluon allocates and
    # zero-fills a gradient buffer as large as the weights (550 MB for vgg19) that nothing
    # here uses; skipping it halves the load time (vgg19: 1.5 s -> 0.8 s).
    net.collect_params().setattr("grad_req", "null")
    if source.kind == "untrained":
        net.initialize(mx.init.Zero(), ctx=mx.cpu())
        net(mx.nd.zeros((1, 3, 224, 224)))  # materialize deferred shapes
        seeded_initialization(net, source.seed)
        return net
    try:
        with loaded_arrays_adopted():
            net.load_parameters(source.path, ctx=mx.cpu())
    except (mx.base.MXNetError, AssertionError, ValueError, OSError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(
            f"{spec.name}: cannot load {source.path}: {first_line[:300]}",
            hint=f"the file must be Gluon {spec.zoo_name} parameters saved with save_parameters",
        ) from None
    return net


def seeded_initialization(net, seed: int) -> None:
    """Untrained weights that are the same on every run, thread count and machine: Xavier
    (MXNet's default form: uniform, fan average, magnitude 3) for every conv and dense
    weight, drawn by numpy from the seed and the parameter's structural name; biases and
    BatchNorm shifts and means 0, scales and variances 1.

    Not mx.init.Xavier after mx.random.seed: measured on resnet152, MXNet's threaded engine
    gives 2 to 8 of its weight tensors other values from one initialization to the next in
    the same process, at 1 thread as at 2."""
    from .mx import mx

    for name, param in sorted(net._collect_params_with_prefix().items()):
        shape = param.shape
        rng = np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])
        if name.endswith("weight") and len(shape) >= 2:
            receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
            fan_average = (shape[0] + shape[1]) * receptive / 2
            scale = np.float32(np.sqrt(3.0 / fan_average))
            values = rng.random(shape, dtype=np.float32)    # in place: vgg's fc6 is 400 MB
            values *= 2 * scale
            values -= scale
        elif name.endswith(("gamma", "running_var")):
            values = np.ones(shape, np.float32)
        else:
            values = np.zeros(shape, np.float32)
        param.set_data(mx.nd.array(values, dtype=param.dtype))
