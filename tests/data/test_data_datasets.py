"""Dataset downloads, offline: a local http.server (in a thread) and file:// URLs stand in for the web."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import shutil
import tarfile
import threading

import pytest

from caffe_like.cli import main
from caffe_like.data import datasets
from caffe_like.errors import DataError


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def serve():
    """serve(folder) -> base URL of a local HTTP server for that folder (stopped after the test)."""
    servers = []

    def start(folder):
        handler = functools.partial(_QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_mnist_from_a_local_server_verifies_and_skips_what_is_there(mnist_dir, tmp_path, serve):
    lines = []
    target = datasets.fetch("mnist", tmp_path / "root", url_base=serve(mnist_dir), log=lines.append)
    assert target == tmp_path / "root" / "mnist"
    assert sorted(p.name for p in target.iterdir()) == sorted(f.name for f in datasets.DATASETS["mnist"].files)
    assert all(line.startswith("fetched") and "uncompressed payload" in line for line in lines)  # recompressed copy
    lines.clear()
    datasets.fetch("mnist", tmp_path / "root", url_base="http://127.0.0.1:9/unused/", log=lines.append)
    assert len(lines) == 4 and all(line.startswith("present") for line in lines)


def test_mnist_checksum_mismatch_deletes_the_file(mnist_dir, tmp_path, serve):
    site = tmp_path / "site"
    shutil.copytree(mnist_dir, site)
    corrupt = site / "t10k-labels-idx1-ubyte.gz"
    corrupt.write_bytes(corrupt.read_bytes()[:-40] + b"\0" * 40)
    with pytest.raises(DataError, match="checksum mismatch for .*t10k-labels-idx1-ubyte.gz") as info:
        datasets.fetch("mnist", tmp_path / "root", url_base=serve(site), log=lambda line: None)
    assert "expected ec29112dd5afa0611ce80d1b7f02629c" in str(info.value)
    assert not (tmp_path / "root" / "mnist" / "t10k-labels-idx1-ubyte.gz").exists()


def test_unreachable_source_lists_the_urls(tmp_path):
    with pytest.raises(DataError, match="could not download train-images-idx3-ubyte.gz") as info:
        datasets.fetch("mnist", tmp_path, url_base=str(tmp_path / "empty"), log=lambda line: None)
    assert "--url-base" in str(info.value)


def fake_archive(folder, members: dict[str, bytes], name="fake-data.tar.gz"):
    path = folder / name
    with tarfile.open(path, "w:gz") as tar:
        for member, payload in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path


def spec_for(archive, members, folder="fake-batches"):
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    return datasets.DatasetSpec(
        name="fake", folder=folder, urls=("http://127.0.0.1:9/never/",),
        files=(datasets.FileSpec(archive.name, (md5,)),), archive=True,
        members={k: hashlib.md5(v).hexdigest() for k, v in members.items()})


def test_archive_download_unpack_and_verify_over_http(tmp_path, serve):
    site = tmp_path / "site"
    site.mkdir()
    members = {"fake-batches/data_batch_1": b"one", "fake-batches/test_batch": b"two"}
    archive = fake_archive(site, members)
    spec = spec_for(archive, members)
    lines = []
    target = datasets.fetch(spec, tmp_path / "root", url_base=serve(site), log=lines.append)
    assert (target / "data_batch_1").read_bytes() == b"one"
    assert not (tmp_path / "root" / archive.name).exists()  # removed after unpacking
    assert [line.split()[0] for line in lines] == ["fetched", "unpacked", "removed"]
    lines.clear()
    datasets.fetch(spec, tmp_path / "root", url_base="http://127.0.0.1:9/", log=lines.append)
    assert lines[0].startswith("present")


def test_archive_checksum_mismatch_and_hostile_members(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    members = {"fake-batches/data_batch_1": b"one"}
    archive = fake_archive(site, members)
    spec = spec_for(archive, members)
    archive.write_bytes(archive.read_bytes() + b"tampered")
    with pytest.raises(DataError, match="checksum mismatch"):
        datasets.fetch(spec, tmp_path / "root", url_base=datasets.file_url(site), log=lambda line: None)
    hostile = {"../escape.txt": b"x"}
    archive = fake_archive(site, hostile, name="hostile.tar.gz")
    with pytest.raises(DataError, match="outside 'fake-batches/'"):
        datasets.fetch(spec_for(archive, hostile), tmp_path / "root", url_base=str(site), log=lambda line: None)
    assert not (tmp_path / "escape.txt").exists()


def test_published_checksums_are_complete():
    for spec in datasets.DATASETS.values():
        for file in spec.files:
            assert all(len(m) == 32 for m in file.md5) and (file.payload_md5 is None or len(file.payload_md5) == 32)
        assert all(len(m) == 32 for m in spec.members.values())
    assert set(datasets.DATASETS["cifar10"].members) >= {f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)}


def test_cli_data_command_from_a_local_folder(mnist_dir, tmp_path, capsys):
    root = tmp_path / "root"
    assert main(["data", "mnist", "--root", str(root), "--url-base", str(mnist_dir)]) == 0
    out = capsys.readouterr().out
    assert "mnist is ready in" in out and "--data-root" in out
    assert (root / "mnist" / "train-images-idx3-ubyte.gz").is_file()
    assert main(["data", "cifar10", "--root", str(root), "--url-base", str(tmp_path / "nothing")]) == 2
    assert "could not download cifar-10-python.tar.gz" in capsys.readouterr().err
