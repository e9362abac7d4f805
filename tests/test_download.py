"""The dataset downloader against a real HTTP server on 127.0.0.1 serving small archives (never the internet)."""

from __future__ import annotations

import hashlib
import http.server
import io
import threading
import zipfile

import pytest

from facecompress.data import download
from facecompress.core.errors import InputError
from facecompress.data.sample import generate
from facecompress.data.dataset import SAMPLE_MARKER
from facecompress.data.wider import BBX_FILE

BBX = "0--Parade/0_Parade_x_1.jpg\n1\n1 2 3 4 0 0 0 0 0 0 \n"


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves the bytes in server.files; honours `Range: bytes=N-` only when server.ranges is set."""

    def do_GET(self):
        self.server.log.append((self.path, self.headers.get("Range")))
        body = self.server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = int(self.headers["Range"][6:-1]) if self.headers.get("Range") and self.server.ranges else 0
        if start >= len(body) and start:
            self.send_error(416)
            return
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:])

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files, httpd.log, httpd.ranges = {}, [], True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _publish(server, archives: dict[str, dict[str, bytes]]) -> tuple[tuple[download.Archive, ...], dict[str, str]]:
    """Serve small archives shaped like the official ones; return their specs and the expected file sums."""
    base = f"http://127.0.0.1:{server.server_address[1]}"
    layout = {"WIDER_val.zip": {"WIDER_val/images/": "images"}, "wider_face_split.zip": {"wider_face_split/": "split"},
              "eval_tools.zip": {"eval_tools/ground_truth/": "split"},
              "WIDER_train.zip": {"WIDER_train/images/": "images"}}
    specs = []
    for name, members in archives.items():
        body = _zip(members)
        server.files[f"/{name}"] = body
        md5 = hashlib.md5(body).hexdigest() if name != "eval_tools.zip" else None
        specs.append(download.Archive(name, (f"{base}/missing/{name}", f"{base}/{name}"), md5, layout[name]))
    expected = {"wider_face_val_bbx_gt.txt": hashlib.sha256(BBX.encode()).hexdigest(),
                "wider_face_val.mat": hashlib.sha256(b"mat").hexdigest()}
    return tuple(specs), expected


ARCHIVES = {
    "WIDER_val.zip": {"WIDER_val/images/0--Parade/0_Parade_x_1.jpg": b"jpeg" * 5000, "WIDER_val/readme": b"x"},
    "wider_face_split.zip": {"wider_face_split/wider_face_val_bbx_gt.txt": BBX.encode()},
    "eval_tools.zip": {"eval_tools/ground_truth/wider_face_val.mat": b"mat", "eval_tools/evaluation.m": b"%"},
}


def test_fetches_unpacks_verifies_and_replaces_sample(server, tmp_path):
    images, split, archives = tmp_path / "images", tmp_path / "split", tmp_path / "archives"
    generate(images, split, per_event=1)
    specs, expected = _publish(server, ARCHIVES)
    assert download.download_dataset(images, split, archives, specs, expected) == 1
    assert (images / "0--Parade" / "0_Parade_x_1.jpg").read_bytes() == b"jpeg" * 5000
    assert (split / BBX_FILE).read_text() == BBX and (split / "wider_face_val.mat").read_bytes() == b"mat"
    assert not (split / "evaluation.m").exists() and not (images.parent / "readme").exists()
    assert not (images / SAMPLE_MARKER).exists() and not (split / SAMPLE_MARKER).exists()
    assert sorted(p.name for p in images.rglob("*.jpg")) == ["0_Parade_x_1.jpg"]  # generated scenes are gone
    assert {path for path, _ in server.log} >= {"/missing/WIDER_val.zip", "/WIDER_val.zip"}  # mirror fallback
    assert not list(archives.glob("*.part"))
    server.log.clear()
    download.download_dataset(images, split, archives, specs, expected)
    assert server.log == []  # verified archives are not fetched again


@pytest.mark.parametrize("ranges", [True, False])
def test_resumes_from_part_file(server, tmp_path, ranges):
    server.ranges = ranges
    specs, _ = _publish(server, ARCHIVES)
    body = server.files["/WIDER_val.zip"]
    (tmp_path / "WIDER_val.zip.part").write_bytes(body[: len(body) // 2] if ranges else b"stale bytes")
    path = download.fetch(specs[0], tmp_path)
    assert path.read_bytes() == body
    assert (f"/WIDER_val.zip", f"bytes={len(body) // 2 if ranges else len(b'stale bytes')}-") in server.log


def test_checksum_mismatch_is_an_error_and_leaves_no_file(server, tmp_path):
    specs, _ = _publish(server, ARCHIVES)
    bad = download.Archive(specs[0].filename, specs[0].urls, "0" * 32, specs[0].members)
    with pytest.raises(InputError, match="WIDER_val.zip: could not download .*MD5 mismatch"):
        download.fetch(bad, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_unreachable_everywhere(tmp_path):
    spec = download.Archive("x.zip", ("http://127.0.0.1:9/x.zip",), None, {})
    with pytest.raises(InputError, match="x.zip: could not download"):
        download.fetch(spec, tmp_path, timeout=5)


def test_extracted_file_with_wrong_sum_is_refused(server, tmp_path):
    specs, expected = _publish(server, ARCHIVES)
    with pytest.raises(InputError, match="wider_face_val.mat: SHA-256 differs"):
        download.download_dataset(tmp_path / "i", tmp_path / "s", tmp_path / "a", specs,
                                  {**expected, "wider_face_val.mat": "0" * 64})


def test_archive_escaping_its_folder_is_refused(tmp_path):
    path = tmp_path / "evil.zip"
    path.write_bytes(_zip({"wider_face_split/../../escape.txt": b"x"}))
    with pytest.raises(InputError, match="outside its folder"):
        download.extract(path, {"wider_face_split/": "split"}, {"split": tmp_path / "split"})
    assert not (tmp_path / "escape.txt").exists()


def test_corrupt_archive_on_disk(tmp_path):
    path = tmp_path / "broken.zip"
    path.write_bytes(b"PK not really")
    with pytest.raises(InputError, match="broken.zip: not a valid zip archive"):
        download.extract(path, {"x/": "split"}, {"split": tmp_path})


def test_training_images_come_from_their_own_archive(server, tmp_path):
    specs, _ = _publish(server, {"WIDER_train.zip": {"WIDER_train/images/0--Parade/0_Parade_t_1.jpg": b"train",
                                                     "WIDER_train/images/1--Handshaking/1_H_t_2.jpg": b"t2"}})
    images = tmp_path / "WIDER_train" / "images"
    assert download.download_train_images(images, tmp_path / "archives", specs[0]) == 2
    assert (images / "0--Parade" / "0_Parade_t_1.jpg").read_bytes() == b"train"
    assert download.TRAIN_ARCHIVE.members == {"WIDER_train/images/": "images"}
