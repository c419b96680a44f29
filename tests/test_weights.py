"""The pretrained-weights path, tested for real against a loopback Gluon model-store mirror.

A small HTTP server on 127.0.0.1 serves ``gluon/models/{zoo_name}-{short}.zip`` archives the
way the model store does; MXNET_GLUON_REPO points at it. The zoo's SHA-1 table is patched for
the model under test, so any small file stands in for the published weights (the download and
cache code only hashes files). load_network is tested with a tiny real Gluon network.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from reportgen import weights
from reportgen.errors import WeightsError
from reportgen.models import MODEL_SPECS, ModelSpec
from reportgen.mx import mx, nn
from reportgen.weights import (
    WeightSource,
    cached_pretrained,
    default_model_root,
    expected_file_name,
    fetch_pretrained,
    load_network,
    repo_url,
    resolve_params_file,
    resolve_pretrained,
)
from mxnet.gluon.model_zoo import model_store

SPEC = MODEL_SPECS["vgg16"]
PAYLOAD = bytes(range(256)) * 64 + b"stand-in for published vgg16 weights"
PAYLOAD_SHA1 = hashlib.sha1(PAYLOAD).hexdigest()
FILE_NAME = f"vgg16-{PAYLOAD_SHA1[:8]}.params"
ZIP_PATH = f"/gluon/models/vgg16-{PAYLOAD_SHA1[:8]}.zip"


def make_zip(member: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(member, data)
    return buf.getvalue()


class Mirror:
    """A loopback model-store mirror. `mode` decides how every request is answered."""

    def __init__(self):
        self.files: dict[str, bytes] = {}   # URL path -> body
        self.mode = "serve"                 # serve | html | hang | truncate | chunked-truncate | garbage
        self.requests: list[str] = []
        self.release = threading.Event()    # lets hanging handlers go at teardown
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):    # keep pytest output clean
                pass

            def do_GET(self):
                mirror.requests.append(self.path)
                mode = mirror.mode
                if mode == "hang":
                    mirror.release.wait(30)
                    return
                if mode == "trickle":   # a byte now and then: never idle long enough to time out
                    self.send_response(200)
                    self.send_header("Content-Length", "1000000")
                    self.end_headers()
                    while not mirror.release.wait(0.1):
                        try:
                            self.wfile.write(b"x")
                            self.wfile.flush()
                        except OSError:
                            return
                    return
                if mode == "slow":      # serves correctly, but takes a while: concurrency tests
                    time.sleep(0.5)
                if mode == "garbage":
                    self.wfile.write(b"this is not HTTP\r\n\r\n")
                    return
                if mode == "html":
                    body = b"<!doctype html><html><body>Welcome to our mirror</body></html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                body = mirror.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                if mode == "chunked-truncate":
                    self.protocol_version = "HTTP/1.1"
                    self.send_response(200)
                    self.send_header("Content-Type", "application/zip")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(f"{len(body):x}\r\n".encode() + body[: len(body) // 2])
                    self.close_connection = True
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body if mode in ("serve", "slow") else body[: len(body) // 2])

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def no_proxy(monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def mirror(monkeypatch, no_proxy):
    server = Mirror()
    monkeypatch.setenv("MXNET_GLUON_REPO", server.url)
    yield server
    server.close()


@pytest.fixture
def published(monkeypatch, mirror):
    """vgg16's 'published' weights are PAYLOAD; the mirror serves them."""
    monkeypatch.setitem(model_store._model_sha1, "vgg16", PAYLOAD_SHA1)
    mirror.files[ZIP_PATH] = make_zip(FILE_NAME, PAYLOAD)
    return mirror


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in Path(folder).iterdir())


# --- names, folders, URLs ---------------------------------------------------------------

def test_expected_file_name_uses_the_zoo_table():
    assert expected_file_name(MODEL_SPECS["vgg19"]) == "vgg19-ad2f660d.params"


def test_expected_file_name_follows_a_patched_table(monkeypatch):
    monkeypatch.setitem(model_store._model_sha1, "vgg16", PAYLOAD_SHA1)
    assert expected_file_name(SPEC) == FILE_NAME


def test_default_model_root_honours_mxnet_home(monkeypatch, tmp_path):
    monkeypatch.setenv("MXNET_HOME", str(tmp_path / "mxhome"))
    assert default_model_root() == tmp_path / "mxhome" / "models"


def test_default_model_root_without_mxnet_home_is_under_home(monkeypatch, tmp_path):
    monkeypatch.delenv("MXNET_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_model_root() == tmp_path / ".mxnet" / "models"


def test_repo_url_adds_the_missing_trailing_slash(monkeypatch):
    monkeypatch.setenv("MXNET_GLUON_REPO", "http://127.0.0.1:9/mirror")
    assert repo_url() == "http://127.0.0.1:9/mirror/"
    monkeypatch.setenv("MXNET_GLUON_REPO", "http://127.0.0.1:9/mirror/")
    assert repo_url() == "http://127.0.0.1:9/mirror/"


# --- download and cache -------------------------------------------------------------------

def test_download_into_empty_root_then_cache_hit_without_request(published, tmp_path):
    root = tmp_path / "fresh" / "models"          # does not exist yet
    assert cached_pretrained(SPEC, root) == (root / FILE_NAME, "missing")

    source = resolve_pretrained(SPEC, root)

    assert source == WeightSource("pretrained", str(root / FILE_NAME), PAYLOAD_SHA1)
    assert source.meaningful
    assert (root / FILE_NAME).read_bytes() == PAYLOAD
    assert listing(root) == [FILE_NAME]           # no temp folders or archives left
    assert published.requests == [ZIP_PATH]
    assert cached_pretrained(SPEC, root) == (root / FILE_NAME, "verified")

    again = resolve_pretrained(SPEC, root)
    assert again == source
    assert published.requests == [ZIP_PATH]       # served from the cache: no second request


def test_fetch_pretrained_returns_the_verified_target(published, tmp_path):
    target = fetch_pretrained(SPEC, tmp_path)
    assert target == tmp_path / FILE_NAME
    assert hashlib.sha1(target.read_bytes()).hexdigest() == PAYLOAD_SHA1


def test_repo_without_trailing_slash_and_with_a_path(published, monkeypatch, tmp_path):
    published.files = {"/mirror" + ZIP_PATH: make_zip(FILE_NAME, PAYLOAD)}
    monkeypatch.setenv("MXNET_GLUON_REPO", f"http://127.0.0.1:{published.port}/mirror")
    source = resolve_pretrained(SPEC, tmp_path)
    assert Path(source.path).read_bytes() == PAYLOAD
    assert published.requests == ["/mirror" + ZIP_PATH]


def test_sha1_mismatch_raises_and_leaves_nothing(published, tmp_path):
    wrong = b"a different file from a bad mirror" * 100
    published.files[ZIP_PATH] = make_zip(FILE_NAME, wrong)
    root = tmp_path / "models"
    with pytest.raises(WeightsError) as info:
        resolve_pretrained(SPEC, root)
    message = str(info.value)
    assert FILE_NAME in message
    assert PAYLOAD_SHA1 in message
    assert hashlib.sha1(wrong).hexdigest() in message
    assert info.value.exit_code == 3
    assert listing(root) == []                    # no partial, temp or unverified file


def test_corrupt_cached_file_is_downloaded_again(published, tmp_path):
    (tmp_path / FILE_NAME).write_bytes(b"half a download")
    assert cached_pretrained(SPEC, tmp_path) == (tmp_path / FILE_NAME, "corrupt")

    source = resolve_pretrained(SPEC, tmp_path)

    assert source.sha1 == PAYLOAD_SHA1
    assert (tmp_path / FILE_NAME).read_bytes() == PAYLOAD
    assert published.requests == [ZIP_PATH]
    assert listing(tmp_path) == [FILE_NAME]


def test_corrupt_cached_file_without_download_raises(published, tmp_path):
    (tmp_path / FILE_NAME).write_bytes(b"half a download")
    with pytest.raises(WeightsError) as info:
        resolve_pretrained(SPEC, tmp_path, download=False)
    assert "corrupt" in str(info.value)
    assert published.requests == []
    assert (tmp_path / FILE_NAME).read_bytes() == b"half a download"   # left for the user


def test_missing_file_without_download_raises(published, tmp_path):
    with pytest.raises(WeightsError) as info:
        resolve_pretrained(SPEC, tmp_path, download=False)
    message = str(info.value)
    assert FILE_NAME in message and "missing" in message and str(tmp_path) in message
    assert "--weights untrained" in message
    assert published.requests == []
    assert listing(tmp_path) == []


def test_404_names_model_file_folder_and_the_way_out(published, tmp_path):
    published.files.clear()
    root = tmp_path / "models"
    with pytest.raises(WeightsError) as info:
        resolve_pretrained(SPEC, root)
    err = info.value
    assert err.exit_code == 3
    message = str(err)
    assert "vgg16" in message
    assert FILE_NAME in message
    assert str(root) in message
    assert "--weights untrained" in message
    assert "Not Found" in message
    assert published.requests == [ZIP_PATH]
    assert listing(root) == []


def test_html_page_instead_of_zip(published, tmp_path):
    published.mode = "html"
    with pytest.raises(WeightsError) as info:
        resolve_pretrained(SPEC, tmp_path)
    assert "zip" in str(info.value) and FILE_NAME in str(info.value)
    assert info.value.exit_code == 3
    assert listing(tmp_path) == []


def test_zip_without_the_expected_member(published, tmp_path):
    published.files[ZIP_PATH] = make_zip("something-else.params", PAYLOAD)
    with pytest.raises(WeightsError) as info:
        resolve_pretrained(SPEC, tmp_path)
    assert FILE_NAME in str(info.value)
    assert listing(tmp_path) == []


def test_transfer_cut_short_with_content_length(published, tmp_path):
    published.mode = "truncate"
    with pytest.raises(WeightsError):
        resolve_pretrained(SPEC, tmp_path)
    assert listing(tmp_path) == []


def test_chunked_transfer_cut_short(published, tmp_path):
    published.mode = "chunked-truncate"
    with pytest.raises(WeightsError):
        resolve_pretrained(SPEC, tmp_path)


def test_non_http_answer(published, tmp_path):
    published.mode = "garbage"
    with pytest.raises(WeightsError):
        resolve_pretrained(SPEC, tmp_path)


def test_server_that_never_answers_times_out(published, monkeypatch, tmp_path):
    published.mode = "hang"
    monkeypatch.setattr(weights, "DOWNLOAD_TIMEOUT_S", 1.0)
    start = time.monotonic()
    with pytest.raises(WeightsError) as info:
        resolve_pretrained(SPEC, tmp_path)
    elapsed = time.monotonic() - start
    assert elapsed < 10
    assert FILE_NAME in str(info.value)
    assert published.requests == [ZIP_PATH]       # it did reach the server
    assert listing(tmp_path) == []


def test_unreachable_port_is_a_weights_error(monkeypatch, no_proxy, tmp_path):
    monkeypatch.setitem(model_store._model_sha1, "vgg16", PAYLOAD_SHA1)
    with socket.socket() as s:                    # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MXNET_GLUON_REPO", f"http://127.0.0.1:{port}/")
    with pytest.raises(WeightsError) as info:
        resolve_pretrained(SPEC, tmp_path)
    assert "vgg16" in str(info.value)
    assert listing(tmp_path) == []


def test_nonsense_repo_url_is_a_weights_error(monkeypatch, tmp_path):
    monkeypatch.setitem(model_store._model_sha1, "vgg16", PAYLOAD_SHA1)
    monkeypatch.setenv("MXNET_GLUON_REPO", "not-a-url")
    with pytest.raises(WeightsError):
        resolve_pretrained(SPEC, tmp_path)
    assert listing(tmp_path) == []


def test_model_root_that_cannot_be_created(published, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(WeightsError) as info:
        resolve_pretrained(SPEC, blocker / "models")
    assert "cannot write in model folder" in str(info.value)
    assert published.requests == []


# --- local .params files ------------------------------------------------------------------

def test_resolve_params_file_missing(tmp_path):
    with pytest.raises(WeightsError) as info:
        resolve_params_file(SPEC, tmp_path / "nope.params")
    assert str(tmp_path / "nope.params") in str(info.value)
    assert info.value.exit_code == 3


def test_resolve_params_file_folder_is_not_a_file(tmp_path):
    with pytest.raises(WeightsError):
        resolve_params_file(SPEC, tmp_path)


def test_resolve_params_file_hashes_the_file(tmp_path, monkeypatch):
    data = b"\x00\x01" * 5000 + b"params"
    (tmp_path / "w.params").write_bytes(data)
    monkeypatch.chdir(tmp_path)
    source = resolve_params_file(SPEC, Path("w.params"))     # relative path
    assert source.kind == "params"
    assert source.sha1 == hashlib.sha1(data).hexdigest()
    assert source.path == str(tmp_path / "w.params")         # made absolute
    assert source.meaningful


# --- load_network with a tiny real Gluon network -----------------------------------------

TINY = ModelSpec("tiny", "tiny_test_net", "VGG", 3)


def build_tiny(spec: ModelSpec):
    net = nn.HybridSequential()
    net.add(nn.Conv2D(2, kernel_size=3, strides=16), nn.GlobalAvgPool2D(), nn.Dense(3))
    return net


def build_other(spec: ModelSpec):
    net = nn.HybridSequential()
    net.add(nn.Conv2D(4, kernel_size=5, strides=16), nn.GlobalAvgPool2D(), nn.Dense(7))
    return net


def params_of(net) -> dict[str, np.ndarray]:
    # structural names (what save_parameters writes), so two instances compare directly
    return {name: p.data().asnumpy() for name, p in net._collect_params_with_prefix().items()}


@pytest.fixture
def tiny_params(tmp_path) -> Path:
    mx.random.seed(1234)
    net = build_tiny(TINY)
    net.initialize(mx.init.Xavier(), ctx=mx.cpu())
    net(mx.nd.zeros((1, 3, 224, 224)))
    path = tmp_path / "tiny.params"
    net.save_parameters(str(path))
    return path


def test_load_network_from_params_file(tiny_params):
    expected = mx.nd.load(str(tiny_params))
    net = load_network(TINY, resolve_params_file(TINY, tiny_params), build_tiny)
    got = params_of(net)
    assert sorted(got) == sorted(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name], value.asnumpy())
    x = mx.nd.array(np.random.default_rng(0).normal(size=(1, 3, 224, 224)))
    assert net(x).shape == (1, 3)
    # Loaded for input gradients only: no weight-sized gradient buffers were allocated.
    assert all(p.grad_req == "null" and p._grad is None for p in net.collect_params().values())


def test_loaded_arrays_are_adopted_not_copied(tiny_params, monkeypatch):
    """The no-copy load gives Gluon's own values and outputs, copies no array, and leaves
    Gluon's Parameter as it was."""
    from mxnet.gluon.parameter import Parameter

    reference = build_tiny(TINY)
    reference.load_parameters(str(tiny_params), ctx=mx.cpu())   # Gluon's own way
    original = Parameter._init_impl
    copies = []
    real_copyto = mx.nd.NDArray.copyto
    monkeypatch.setattr(mx.nd.NDArray, "copyto",
                        lambda self, other: copies.append(self.shape) or real_copyto(self, other))
    net = load_network(TINY, resolve_params_file(TINY, tiny_params), build_tiny)
    assert copies == []
    assert Parameter._init_impl is original
    got, expected = params_of(net), params_of(reference)
    assert sorted(got) == sorted(expected)
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name])
    x = mx.nd.array(np.random.default_rng(0).normal(size=(2, 3, 224, 224)))
    np.testing.assert_array_equal(net(x).asnumpy(), reference(x).asnumpy())
    # Each parameter owns its array: changing one changes no other.
    params = list(net.collect_params().values())
    before = [p.data().asnumpy() for p in params]
    params[0].set_data(params[0].data() + 1)
    for p, b in zip(params[1:], before[1:]):
        np.testing.assert_array_equal(p.data().asnumpy(), b)


def test_pretrained_download_then_load_network(tiny_params, mirror, monkeypatch, tmp_path):
    data = tiny_params.read_bytes()
    sha = hashlib.sha1(data).hexdigest()
    monkeypatch.setitem(model_store._model_sha1, TINY.zoo_name, sha)
    name = f"{TINY.zoo_name}-{sha[:8]}"
    mirror.files[f"/gluon/models/{name}.zip"] = make_zip(f"{name}.params", data)

    source = resolve_pretrained(TINY, tmp_path / "models")
    net = load_network(TINY, source, build_tiny)

    expected = mx.nd.load(str(tiny_params))
    got = params_of(net)
    for key, value in expected.items():
        np.testing.assert_array_equal(got[key], value.asnumpy())


def test_load_network_garbage_file(tmp_path):
    path = tmp_path / "garbage.params"
    path.write_bytes(b"<html>not parameters</html>")
    with pytest.raises(WeightsError) as info:
        load_network(TINY, resolve_params_file(TINY, path), build_tiny)
    assert str(path) in str(info.value)
    assert "\n  hint:" in str(info.value) and "tiny_test_net" in str(info.value)


def test_load_network_wrong_architecture(tiny_params):
    with pytest.raises(WeightsError) as info:
        load_network(TINY, resolve_params_file(TINY, tiny_params), build_other)
    assert str(tiny_params) in str(info.value)


def test_untrained_is_seeded_and_deterministic():
    a = params_of(load_network(TINY, WeightSource("untrained", seed=7), build_tiny))
    b = params_of(load_network(TINY, WeightSource("untrained", seed=7), build_tiny))
    c = params_of(load_network(TINY, WeightSource("untrained", seed=8), build_tiny))
    assert sorted(a) == sorted(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    weight_keys = [k for k in a if k.endswith("weight")]
    assert weight_keys
    assert any(not np.array_equal(a[k], c[k]) for k in weight_keys)
    assert not WeightSource("untrained", seed=7).meaningful


@pytest.mark.slow
def test_untrained_resnet152_is_the_same_at_every_load_and_thread_count(tmp_path):
    """mx.init.Xavier after mx.random.seed gave 2 to 8 of resnet152's weight tensors other
    values from one load to the next (MXNet's threaded engine); numpy draws per parameter
    do not depend on the engine, the order or the threads."""
    import subprocess
    import sys

    from reportgen import models

    spec = models.model_spec("resnet152")

    def structural(net):
        return {k: v.data().asnumpy() for k, v in net._collect_params_with_prefix().items()}

    first = structural(load_network(spec, WeightSource("untrained", seed=0), models.build_network))
    second = structural(load_network(spec, WeightSource("untrained", seed=0), models.build_network))
    assert [k for k in first if not np.array_equal(first[k], second[k])] == []
    script = ("import sys, numpy as np\n"
              "from reportgen import models, weights\n"
              "net = weights.load_network(models.model_spec('resnet152'), "
              "weights.WeightSource('untrained', seed=0), models.build_network)\n"
              "np.savez(sys.argv[1], **{k: v.data().asnumpy() for k, v in "
              "net._collect_params_with_prefix().items()})\n")
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "one.npz")], check=True,
                   env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True)
    one_thread = np.load(tmp_path / "one.npz")
    assert [k for k in first if not np.array_equal(first[k], one_thread[k])] == []

    # Xavier as MXNet defines it: uniform in +-sqrt(3 / fan average).
    weight = first["features.7.2.body.0.weight"]                    # (512, 2048, 1, 1)
    scale = np.sqrt(3.0 / ((512 + 2048) / 2))
    assert np.abs(weight).max() <= scale and abs(weight.std() / (scale / np.sqrt(3)) - 1) < 0.01
    conv = first["features.0.weight"]                                # (64, 3, 7, 7)
    scale = np.sqrt(3.0 / ((64 + 3) * 49 / 2))
    assert np.abs(conv).max() <= scale and abs(conv.std() / (scale / np.sqrt(3)) - 1) < 0.05
    assert np.all(first["features.1.gamma"] == 1) and np.all(first["features.1.running_mean"] == 0)
    assert np.all(first["features.1.running_var"] == 1) and np.all(first["output.bias"] == 0)


# --- unattended-run grade: corrupt cache, trickling mirror, concurrent fetches, progress -------

def test_corrupt_cache_that_cannot_be_refetched_is_named_with_the_fix(published, tmp_path):
    (tmp_path / FILE_NAME).write_bytes(b"half a file")
    published.mode = "html"
    with pytest.raises(WeightsError) as info:
        resolve_pretrained(SPEC, tmp_path)
    message = str(info.value)
    assert FILE_NAME in message and "is corrupt" in message and "delete " in message
    assert "--weights untrained" in message
    assert (tmp_path / FILE_NAME).read_bytes() == b"half a file"   # nothing else touched


def test_trickling_mirror_is_cut_off_by_the_deadline(published, tmp_path, monkeypatch):
    monkeypatch.setattr(weights, "DOWNLOAD_DEADLINE_S", 1.0)
    published.mode = "trickle"
    started = time.monotonic()
    with pytest.raises(WeightsError, match="longer than"):
        resolve_pretrained(SPEC, tmp_path)
    assert time.monotonic() - started < 10
    assert list(tmp_path.iterdir()) == []


def test_concurrent_fetches_download_once_and_both_get_a_valid_file(published, tmp_path):
    published.mode = "slow"
    results, errors = [], []

    def fetch():
        try:
            results.append(resolve_pretrained(SPEC, tmp_path))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and len(results) == 2
    assert published.requests == [ZIP_PATH]
    assert [p.name for p in tmp_path.iterdir()] == [FILE_NAME]
    assert hashlib.sha1((tmp_path / FILE_NAME).read_bytes()).hexdigest() == PAYLOAD_SHA1


def test_download_reports_progress(published, tmp_path):
    seen = []
    resolve_pretrained(SPEC, tmp_path, on_progress=lambda done, total: seen.append((done, total)))
    size = len(published.files[ZIP_PATH])
    assert seen and seen[-1] == (size, size)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_fetch_then_models_lists_verified(published, tmp_path, capsys):
    from reportgen.cli import main

    assert main(["models", "-m", "vgg16", "--model-root", str(tmp_path)]) == 3
    assert "missing" in capsys.readouterr().out
    assert main(["fetch", "-m", "vgg16", "--model-root", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "100 %" in err and "downloaded and verified" in err
    assert main(["models", "-m", "vgg16", "--model-root", str(tmp_path)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.split()[:2] == ["vgg16", "verified"] and line.endswith(str(tmp_path / FILE_NAME))
    assert main(["fetch", "-m", "vgg16", "--model-root", str(tmp_path)]) == 0
    assert "already cached and verified" in capsys.readouterr().err
    assert published.requests == [ZIP_PATH]


def test_models_reports_corrupt_and_fetch_fails_cleanly(published, tmp_path, capsys):
    from reportgen.cli import main

    (tmp_path / FILE_NAME).write_bytes(b"garbage")
    assert main(["models", "-m", "vgg16", "--model-root", str(tmp_path)]) == 3
    assert "corrupt" in capsys.readouterr().out
    published.mode = "html"
    assert main(["fetch", "-m", "vgg16", "--model-root", str(tmp_path)]) == 3
    err = capsys.readouterr().err
    assert "is corrupt" in err and "Traceback" not in err
