"""Downloads show a Rich progress bar (bytes, speed, ETA): a dataset file (data/fetch.py) and a weights file
(metrics/features/weights.py) fetched from a real HTTP server on 127.0.0.1 (python's http.server in a thread)."""
from __future__ import annotations

import functools
import hashlib
import http.server
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from genlab.data.fetch import download_file
from genlab.metrics.features.weights import download_checked

SIZE = 3 * (1 << 20) + 12345  # a little over 3 MiB: several 1 MiB chunks


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture
def served(tmp_path) -> Iterator[tuple[str, bytes]]:
    """(URL of www/file.bin, its bytes), served from a thread for the test's duration."""
    www = tmp_path / "www"
    www.mkdir()
    data = bytes(range(256)) * (SIZE // 256) + b"x" * (SIZE % 256)
    (www / "file.bin").write_bytes(data)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(www)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/file.bin", data
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def assert_bar(err: str, name: str) -> None:
    """The bar's last render: the file's name, all of its 3.2 MB, a speed and the time left (0:00:00)."""
    lines = [line for line in err.splitlines() if f"downloading {name}" in line]
    assert lines, err
    last = lines[-1]
    assert re.search(r"3\.2/3\.2 MB", last) and re.search(r"[\d.]+ [kMG]?B/s", last) and "0:00:00" in last, last


def test_dataset_download_shows_bytes_speed_and_eta(served, tmp_path, capsys):
    url, data = served
    dest = download_file(url, tmp_path / "data" / "train-images-idx3-ubyte.gz", hashlib.md5(data).hexdigest())
    assert dest.read_bytes() == data
    out = capsys.readouterr()
    assert out.out == ""  # the bar goes to stderr
    assert_bar(out.err, "train-images-idx3-ubyte.gz")


def test_weights_download_shows_bytes_speed_and_eta(served, tmp_path, capsys):
    url, data = served
    digest = hashlib.sha256(data).hexdigest()
    dest = download_checked(url, tmp_path / "weights" / "w.pth",
                            lambda h, size: None if (h, size) == (digest, SIZE) else digest, "test weights")
    assert Path(dest).read_bytes() == data
    assert_bar(capsys.readouterr().err, "w.pth")
