"""The AWE face's node store (/awe/node): Shock's node protocol as the Go worker speaks
it, against a real server; uploads are chunked multipart bodies, as the worker sends."""

import hashlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.config import AweConfig, Config, ServerConfig
from tests.awe import VERSION, awe_worker_binary
from tests.conftest import ServerThread, Sql

__all__ = ["awe_worker_binary"]

MiB = 1024 * 1024
BOUNDARY = "corral-test-boundary-7d3a"


def multipart(
    fields: list[tuple[str, str | None, Iterator[bytes] | bytes]],
) -> Iterator[bytes]:
    """A multipart/form-data body, generated piece by piece (httpx then sends it chunked,
    with no Content-Length, as the Go worker does). A field is (name, filename or None
    for a parameter, its bytes or an iterator over them)."""
    for name, filename, data in fields:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
        if filename is not None:
            head += "Content-Type: application/octet-stream\r\n"
        yield (head + "\r\n").encode()
        if isinstance(data, bytes):
            yield data
        else:
            yield from data
        yield b"\r\n"
    yield f"--{BOUNDARY}--\r\n".encode()


def put(api: httpx.Client, node: str, fields: list[tuple[str, str | None, Any]]) -> httpx.Response:
    return api.put(
        f"/awe/node/{node}",
        content=multipart(fields),
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        timeout=120,
    )


def pieces(total: int, seed: int, size: int = 300_000) -> Iterator[bytes]:
    """`total` pseudo-random bytes in pieces of `size` (not chunk-aligned on purpose)."""
    sent = 0
    counter = 0
    while sent < total:
        block = b""
        while len(block) < min(size, total - sent):
            block += hashlib.sha512(f"{seed}/{counter}".encode()).digest()
            counter += 1
        block = block[: min(size, total - sent)]
        sent += len(block)
        yield block


def data(total: int, seed: int) -> bytes:
    return b"".join(pieces(total, seed))


def new_node(api: httpx.Client) -> str:
    answer = api.post("/awe/node")
    assert answer.status_code == 200, answer.text
    node_id: str = answer.json()["data"]["id"]
    return node_id


def ok_node(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert list(body) == ["status", "data", "error"]
    assert body["status"] == 200
    assert body["error"] is None
    node: dict[str, Any] = body["data"]
    return node


def refused(answer: httpx.Response, status: int, message: str | None = None) -> list[str]:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["status"] == status
    assert body["data"] is None
    if message is not None:
        assert body["error"] == [message]
    errors: list[str] = body["error"]
    return errors


def download(api: httpx.Client, node: str) -> tuple[str, int]:
    """The md5 and size of the node's bytes, read as a stream."""
    digest = hashlib.md5()
    size = 0
    with api.stream("GET", f"/awe/node/{node}?download", timeout=120) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/octet-stream"
        for chunk in answer.iter_bytes():
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def test_a_new_node_has_the_shape_the_go_client_decodes(api: httpx.Client) -> None:
    node = ok_node(api.post("/awe/node"))
    assert list(node) == [
        "id", "version", "file", "attributes", "indexes", "version_parts", "tags",
        "linkage", "priority", "created_on", "last_modified", "expiration", "type", "parts",
    ]  # fmt: skip
    assert uuid.UUID(node["id"]).version == 4
    assert node["type"] == "basic"
    assert node["parts"] is None
    assert node["attributes"] is None
    assert node["file"] == {
        "name": "",
        "size": 0,
        "checksum": {},
        "format": "",
        "virtual": False,
        "virtual_parts": None,
        "created_on": "0001-01-01T00:00:00Z",
    }
    assert node["expiration"] == "0001-01-01T00:00:00Z"
    assert node["created_on"].endswith("Z")
    assert ok_node(api.get(f"/awe/node/{node['id']}"))["id"] == node["id"]


def test_an_upload_comes_back_byte_for_byte(api: httpx.Client, sql: Sql) -> None:
    node = new_node(api)
    payload = data(3 * MiB + 12345, seed=1)
    answer = put(
        api,
        node,
        [
            ("attributes_str", None, b'{"stage": "qc", "n": 2}'),
            ("upload", "reads.fastq", pieces(len(payload), seed=1)),
        ],
    )
    stored = ok_node(answer)
    md5 = hashlib.md5(payload).hexdigest()
    assert stored["file"]["name"] == "reads.fastq"
    assert stored["file"]["size"] == len(payload)
    assert stored["file"]["checksum"] == {"md5": md5}
    assert stored["attributes"] == {"stage": "qc", "n": 2}
    assert download(api, node) == (md5, len(payload))
    # in 1 MiB chunks, none of them the whole file
    sizes = sql.fetch(
        "SELECT length(data) AS n FROM awe_node_chunks WHERE node = $1 ORDER BY seq",
        uuid.UUID(node),
    )
    assert [r["n"] for r in sizes] == [MiB, MiB, MiB, 12345]
    # a second upload replaces the first
    again = ok_node(put(api, node, [("upload", "small.txt", b"hello\n")]))
    assert again["file"]["size"] == 6
    assert again["attributes"] == {"stage": "qc", "n": 2}
    assert api.get(f"/awe/node/{node}?download").content == b"hello\n"


def test_an_attributes_file_is_stored_as_attributes(api: httpx.Client) -> None:
    node = new_node(api)
    stored = ok_node(
        put(
            api,
            node,
            [("attributes", "attr.json", b'{"a": [1, 2]}'), ("upload", "x", b"x")],
        )
    )
    assert stored["attributes"] == {"a": [1, 2]}
    bad = put(api, node, [("attributes", "attr.json", b"{not json")])
    refused(bad, 400)


def test_parts_uploaded_out_of_order_make_one_file(api: httpx.Client) -> None:
    node = new_node(api)
    made = ok_node(put(api, node, [("parts", None, b"3"), ("file_name", None, b"all.txt")]))
    assert made["type"] == "parts"
    assert made["parts"] == {
        "count": 3,
        "length": 0,
        "varlen": True,
        "parts": [],
        "compression": "",
    }
    blobs = {n: data(MiB + 1000 * n, seed=10 + n) for n in (1, 2, 3)}
    ok_node(put(api, node, [("3", "p3", blobs[3])]))
    half = ok_node(put(api, node, [("1", "p1", iter([blobs[1][:5000], blobs[1][5000:]]))]))
    assert half["parts"]["length"] == 2
    assert [p[0] for p in half["parts"]["parts"]] == ["1", "3"]
    assert half["file"]["checksum"] == {}
    refused(api.get(f"/awe/node/{node}?download"), 400, "Node has no file")
    whole = ok_node(put(api, node, [("2", "p2", blobs[2])]))
    joined = blobs[1] + blobs[2] + blobs[3]
    md5 = hashlib.md5(joined).hexdigest()
    assert whole["file"]["name"] == "all.txt"
    assert whole["file"]["size"] == len(joined)
    assert whole["file"]["checksum"] == {"md5": md5}
    assert whole["parts"]["parts"] == [
        [str(n), hashlib.md5(blobs[n]).hexdigest()] for n in (1, 2, 3)
    ]
    assert download(api, node) == (md5, len(joined))
    # the same parts=N again is a retried request; another count is refused
    ok_node(put(api, node, [("parts", None, b"3")]))
    refused(put(api, node, [("parts", None, b"4")]), 400)
    refused(put(api, node, [("4", "p4", b"x")]), 400)
    refused(put(api, node, [("upload", "x", b"x")]), 400)


def test_parts_need_a_parts_node(api: httpx.Client) -> None:
    node = new_node(api)
    refused(put(api, node, [("1", "p1", b"x")]), 400)
    refused(put(api, node, [("parts", None, b"many")]), 400)
    refused(put(api, node, [("parts", None, b"0")]), 400)


@pytest.fixture
def small_api(tmp_path: Path, database_url: str) -> Iterator[httpx.Client]:
    config = Config(
        server=ServerConfig(data_dir=str(tmp_path)), awe=AweConfig(max_node_bytes=2 * MiB)
    )
    with ServerThread(config, database_url) as base, httpx.Client(base_url=base) as client:
        yield client


def test_over_the_size_limit_is_413_and_stores_nothing(small_api: httpx.Client, sql: Sql) -> None:
    node = new_node(small_api)
    refused(
        put(small_api, node, [("upload", "big", pieces(2 * MiB + 1, seed=3))]),
        413,
        f"the node would exceed {2 * MiB} bytes",
    )
    assert sql.fetchval("SELECT count(*) FROM awe_node_chunks") == 0
    assert ok_node(small_api.get(f"/awe/node/{node}"))["file"]["size"] == 0
    # exactly the limit is fine
    exact = ok_node(put(small_api, node, [("upload", "big", pieces(2 * MiB, seed=3))]))
    assert exact["file"]["size"] == 2 * MiB
    # a too large replacement keeps the file there was
    refused(put(small_api, node, [("upload", "big", pieces(3 * MiB, seed=4))]), 413)
    assert download(small_api, node)[1] == 2 * MiB
    # parts count together
    parts = new_node(small_api)
    ok_node(put(small_api, parts, [("parts", None, b"2")]))
    ok_node(put(small_api, parts, [("1", "p1", pieces(MiB + MiB // 2, seed=5))]))
    refused(put(small_api, parts, [("2", "p2", pieces(MiB, seed=6))]), 413)
    assert ok_node(small_api.get(f"/awe/node/{parts}"))["parts"]["length"] == 1


def test_unknown_nodes_are_404(api: httpx.Client) -> None:
    for node in (str(uuid.uuid4()), "not-a-uuid"):
        refused(api.get(f"/awe/node/{node}"), 404, "Node not found")
        refused(api.get(f"/awe/node/{node}?download"), 404, "Node not found")
        refused(put(api, node, [("upload", "x", b"x")]), 404, "Node not found")


def test_a_node_without_a_file_is_400_on_download(api: httpx.Client) -> None:
    node = new_node(api)
    refused(api.get(f"/awe/node/{node}?download"), 400, "Node has no file")


def test_bodies_that_are_not_multipart_are_refused(api: httpx.Client) -> None:
    node = new_node(api)
    refused(api.put(f"/awe/node/{node}", content=b"raw"), 400)
    broken = api.put(
        f"/awe/node/{node}",
        content=b'--x\r\nContent-Disposition: form-data; name="upload"; filename="a"\r\n\r\nab',
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    refused(broken, 400)
    assert ok_node(api.get(f"/awe/node/{node}"))["file"]["size"] == 0


def test_a_zero_byte_file(api: httpx.Client) -> None:
    node = new_node(api)
    stored = ok_node(put(api, node, [("upload", "empty", b"")]))
    assert stored["file"]["checksum"] == {"md5": hashlib.md5(b"").hexdigest()}
    answer = api.get(f"/awe/node/{node}?download")
    assert answer.status_code == 200
    assert answer.content == b""


def test_tens_of_megabytes_stream_through(api: httpx.Client) -> None:
    """A 48 MB upload and download, streamed both ways (correctness, not timing)."""
    node = new_node(api)
    total = 48 * 1000 * 1000
    expected = hashlib.md5()
    for piece in pieces(total, seed=7, size=MiB):
        expected.update(piece)
    stored = ok_node(put(api, node, [("upload", "big.bin", pieces(total, seed=7, size=MiB))]))
    assert stored["file"]["size"] == total
    assert stored["file"]["checksum"] == {"md5": expected.hexdigest()}
    assert download(api, node) == (expected.hexdigest(), total)


def test_a_jobs_nodes_go_with_it(api: httpx.Client, sql: Sql) -> None:
    job = api.put("/api/jobs", json={"title": "awe job"}).json()
    node = uuid.uuid4()
    sql.execute("INSERT INTO awe_nodes (id, job_id) VALUES ($1, $2)", node, job)
    ok_node(put(api, str(node), [("upload", "out", b"abc")]))
    sql.execute("DELETE FROM jobs WHERE id = $1", job)
    assert sql.fetchval("SELECT count(*) FROM awe_nodes") == 0
    assert sql.fetchval("SELECT count(*) FROM awe_node_chunks") == 0


def test_the_real_awe_worker_is_built(awe_worker_binary: Path) -> None:
    done = subprocess.run(
        [str(awe_worker_binary), "--version"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ},
    )
    assert VERSION in done.stdout + done.stderr, done
