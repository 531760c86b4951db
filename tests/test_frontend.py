"""The explorer's own widgets, driven in the kernel: the canvas picture and the upload control.

What crosses to the browser is checked here as the traits and messages the widgets send;
tests/test_browser.py checks the same widgets in a real browser.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from explorer.picture import Picture
from explorer.upload import ACK_TIMEOUT_S, CHUNK_BYTES, UPLOAD_LIMIT_BYTES, Upload, describe_size

ROOT = Path(__file__).resolve().parent.parent


def gradient(m, n, channels=None):
    rows = np.linspace(0, 255, m)[:, None] * np.ones((1, n))
    image = np.rint(rows).astype(np.uint8)
    return image if channels is None else np.dstack([image, image[::-1], 255 - image])


# ---------------------------------------------------------------------------
# Picture
# ---------------------------------------------------------------------------


def test_picture_sends_the_pixels_and_the_rank():
    picture = Picture()
    image = gradient(30, 40)
    picture.show(image, rank=7)
    assert (picture.width, picture.height, picture.channels, picture.rank) == (40, 30, 1, 7)
    assert picture.pixels == image.tobytes()
    assert not picture.fitted and (picture.image_width, picture.image_height) == (40, 30)


def test_picture_sends_rgb_as_three_bytes_a_pixel():
    picture = Picture()
    image = gradient(10, 20, channels=3)
    picture.show(image, rank=1)
    assert picture.channels == 3 and picture.pixels == image.tobytes()


def test_picture_is_fitted_to_the_view_in_the_kernel():
    picture = Picture()
    image = gradient(1000, 800)
    picture.show(image, rank=3)
    picture.view_size = [400, 900]  # as the browser reports it: the picture is re-sent to fit
    assert picture.fitted and (picture.width, picture.height) == (400, 500)
    expected = cv2.resize(image, (400, 500), interpolation=cv2.INTER_AREA)
    assert picture.pixels == expected.tobytes()
    assert picture.rank == 3
    picture.view_size = [2000, 300]  # now the height is what limits it
    assert (picture.width, picture.height) == (240, 300)


def test_picture_smaller_than_the_view_is_sent_whole():
    picture = Picture(view_size=[600, 600])
    picture.show(gradient(100, 200), rank=2)
    assert not picture.fitted and (picture.width, picture.height) == (200, 100)


def test_one_to_one_sends_every_pixel():
    picture = Picture(view_size=[100, 100])
    image = gradient(300, 400)
    picture.show(image, rank=9)
    assert picture.fitted and picture.width == 100
    picture.one_to_one = True
    assert not picture.fitted and picture.pixels == image.tobytes()
    picture.one_to_one = False
    assert picture.fitted and picture.width == 100


def test_picture_sends_one_message_per_show():
    picture = Picture(view_size=[50, 50])
    sent = []
    picture.comm.send = lambda data=None, metadata=None, buffers=None: sent.append((data, buffers))
    picture.show(gradient(200, 200), rank=4)
    updates = [data for data, _ in sent if data and data.get("method") == "update"]
    assert len(updates) == 1, f"{len(updates)} update messages for one picture"
    assert updates[0]["state"]["rank"] == 4 and "pixels" in updates[0]["buffer_paths"][0]


def test_picture_png_is_the_whole_picture_losslessly():
    picture = Picture(view_size=[20, 20])
    for image in (gradient(64, 48), gradient(64, 48, channels=3)):
        picture.show(image)
        decoded = cv2.imdecode(np.frombuffer(picture.png(), np.uint8), cv2.IMREAD_UNCHANGED)
        if image.ndim == 3:
            decoded = cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
        np.testing.assert_array_equal(decoded, image)


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.float32), np.zeros((4, 4, 4), np.uint8), np.zeros(5, np.uint8)])
def test_picture_refuses_what_it_cannot_paint(bad):
    with pytest.raises(ValueError, match="uint8 array"):
        Picture().show(bad)


# ---------------------------------------------------------------------------
# Upload
# ---------------------------------------------------------------------------


class Browser:
    """Plays the browser's side of the upload protocol (explorer/upload.js) against an Upload."""

    def __init__(self, upload):
        self.upload = upload
        self.received = upload.messages  # what the kernel sent back

    def message(self, content, buffers=None):
        # What ipywidgets does with a custom message from the browser: call the on_msg handlers.
        self.upload._handle_custom_msg(content, buffers or [])

    def send_file(self, name, data, upload_id="u1", order=None):
        chunks = -(-len(data) // CHUNK_BYTES)
        self.message({"kind": "start", "id": upload_id, "name": name, "size": len(data), "chunks": chunks})
        for index in order if order is not None else range(chunks):
            piece = data[index * CHUNK_BYTES:(index + 1) * CHUNK_BYTES]
            self.message({"kind": "chunk", "id": upload_id, "index": index}, [memoryview(piece)])

    def statuses(self):
        return [m for m in self.received if m["kind"] == "status"]


def test_upload_assembles_the_pieces_in_any_order():
    got = []
    upload = Upload(on_file=lambda name, data: got.append((name, data)) or f"{name}: shown")
    browser = Browser(upload)
    data = np.random.default_rng(0).integers(0, 256, 3 * CHUNK_BYTES + 123, dtype=np.uint8).tobytes()
    browser.send_file("photo.jpg", data, order=[1, 0, 3, 2])
    assert got == [("photo.jpg", data)]
    acks = [m["index"] for m in browser.received if m["kind"] == "ack"]
    assert sorted(acks) == [0, 1, 2, 3]
    statuses = browser.statuses()
    assert statuses[0]["text"] == f"photo.jpg ({describe_size(len(data))}): decoding …"
    assert statuses[-1] == {"kind": "status", "id": "u1", "text": "photo.jpg: shown", "error": False,
                            "final": True}
    assert upload.received == [("photo.jpg", len(data))]


def test_receive_takes_a_file_as_the_browser_sends_it():
    got = []
    upload = Upload(on_file=lambda name, data: got.append(data) or "ok")
    data = bytes(range(256)) * (CHUNK_BYTES // 128)  # two pieces
    messages = upload.receive("two.png", data)
    assert got == [data]
    assert [m["kind"] for m in messages] == ["ack", "ack", "status", "status"]
    assert messages[-1]["text"] == "ok" and messages[-1]["final"]


def test_upload_shows_the_loaders_error():
    def refuse(name, data):
        raise ValueError(f"{name}: not an image")

    browser = Browser(Upload(on_file=refuse))
    browser.send_file("notes.png", b"hello")
    last = browser.statuses()[-1]
    assert last["error"] and last["final"] and "notes.png: not an image" in last["text"]


def test_an_empty_file_is_delivered_at_once():
    got = []
    browser = Browser(Upload(on_file=lambda name, data: got.append(data) or "ok"))
    browser.send_file("empty.png", b"")
    assert got == [b""]


def test_a_file_over_the_limit_is_refused_in_the_kernel_too():
    got = []
    browser = Browser(Upload(on_file=lambda name, data: got.append(data)))
    browser.message({"kind": "start", "id": "big", "name": "huge.tif", "size": UPLOAD_LIMIT_BYTES + 1,
                     "chunks": UPLOAD_LIMIT_BYTES // CHUNK_BYTES + 1})
    last = browser.statuses()[-1]
    assert last["error"] and "huge.tif" in last["text"] and "over the upload limit" in last["text"]
    assert got == []


def test_pieces_of_a_replaced_upload_are_ignored():
    got = []
    browser = Browser(Upload(on_file=lambda name, data: got.append((name, data)) or "ok"))
    browser.message({"kind": "start", "id": "old", "name": "a.png", "size": 10, "chunks": 1})
    browser.send_file("b.png", b"0123456789", upload_id="new")
    browser.message({"kind": "chunk", "id": "old", "index": 0}, [memoryview(b"abcdefghij")])
    assert got == [("b.png", b"0123456789")]


def test_upload_limits_are_what_the_browser_is_told():
    upload = Upload()
    assert (upload.limit, upload.chunk_bytes, upload.timeout_s) == (UPLOAD_LIMIT_BYTES, CHUNK_BYTES, ACK_TIMEOUT_S)
    assert UPLOAD_LIMIT_BYTES >= 64_000_000  # issue 14: at least 64 MB
    assert CHUNK_BYTES <= 2 * 1024 * 1024  # far below Tornado's default limit of 10 MiB


# ---------------------------------------------------------------------------
# The Jupyter configuration shipped in the repo
# ---------------------------------------------------------------------------


def test_shipped_servers_take_messages_as_large_as_the_upload_limit():
    server = json.loads((ROOT / "jupyter_config" / "jupyter_server_config.json").read_text())
    voila = json.loads((ROOT / "jupyter_config" / "voila.json").read_text())
    for name, settings in (("JupyterLab", server["ServerApp"]), ("Voila", voila["Voila"])):
        size = settings["tornado_settings"]["websocket_max_message_size"]
        assert size >= UPLOAD_LIMIT_BYTES + CHUNK_BYTES, f"{name} takes messages up to {size} bytes only"


def test_shipped_servers_send_kernel_messages_without_delay():
    server = json.loads((ROOT / "jupyter_config" / "jupyter_server_config.json").read_text())
    voila = json.loads((ROOT / "jupyter_config" / "voila.json").read_text())
    for name, settings in (("JupyterLab", server["ServerApp"]), ("Voila", voila["Voila"])):
        assert settings["kernel_websocket_connection_class"] == "explorer.server.NoDelayConnection", name


def test_the_kernel_connection_turns_nagle_off_before_it_connects(monkeypatch):
    import asyncio

    from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection

    from explorer.server import NoDelayConnection

    calls = []

    class Handler:  # stands in for the server's KernelWebsocketHandler
        def set_nodelay(self, value):
            calls.append(("nodelay", value))

    async def connect(self):
        calls.append("connect")

    monkeypatch.setattr(ZMQChannelsWebsocketConnection, "connect", connect)
    connection = NoDelayConnection.__new__(NoDelayConnection)  # no server needed
    connection._trait_values["websocket_handler"] = Handler()
    asyncio.run(connection.connect())
    assert calls == [("nodelay", True), "connect"]


def test_the_server_setting_does_not_load_the_lesson_code_into_the_server():
    code = "import sys, explorer.server; print(sorted({'torch', 'cv2', 'helpers'} & set(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert loaded.stdout.strip() == "[]", f"importing explorer.server also imports {loaded.stdout.strip()}"


def test_make_lab_make_app_and_binder_use_the_shipped_config():
    makefile = (ROOT / "Makefile").read_text()
    for target in ("lab", "app"):
        recipe = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", makefile, re.M).group(1)
        assert "$(JUPYTER_CONFIG)" in recipe, f"make {target} does not use jupyter_config/"
    assert re.search(r'^JUPYTER_CONFIG := JUPYTER_CONFIG_PATH="\$\(CURDIR\)/jupyter_config"', makefile, re.M)
    post_build = (ROOT / "postBuild").read_text()
    assert "cp jupyter_config/jupyter_server_config.json jupyter_config/voila.json" in post_build


def _config_env(tmp_path):
    """The environment `make lab` gives Jupyter: the repo's config folder, and no user config."""
    env = dict(os.environ, JUPYTER_CONFIG_PATH=str(ROOT / "jupyter_config"), JUPYTER_CONFIG_DIR=str(tmp_path))
    env.pop("JUPYTER_CONFIG_PATH_EXTRA", None)
    return env


def test_jupyterlab_reads_the_shipped_config(tmp_path):
    shown = subprocess.run(
        [sys.executable, "-m", "jupyter", "lab", "--show-config"], env=_config_env(tmp_path),
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    assert re.search(r"tornado_settings = \{'websocket_max_message_size': (\d+)\}", shown), shown[-2000:]
    assert ".kernel_websocket_connection_class = 'explorer.server.NoDelayConnection'" in shown
    size = int(re.search(r"'websocket_max_message_size': (\d+)", shown).group(1))
    assert size >= UPLOAD_LIMIT_BYTES


def test_voila_reads_the_shipped_config(tmp_path):
    code = ("from voila.app import Voila; app = Voila(); app.initialize(['notebooks/06_explorer.ipynb']); "
            "print(app.kernel_websocket_connection_class.__name__, app.tornado_settings['websocket_max_message_size'])")
    shown = subprocess.run(
        [sys.executable, "-c", code], env=_config_env(tmp_path), cwd=ROOT,
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    assert shown.split()[-2] == "NoDelayConnection"
    assert int(shown.split()[-1]) >= UPLOAD_LIMIT_BYTES


def test_picture_paints_with_webgl2_or_js_as_told():
    """paint_with: "auto" by default (the page's guard picks WebGL2 or JS), "webgl2" or "js" when
    told (tests/test_browser.py checks both in Chromium); anything else is refused."""
    import traitlets

    assert Picture().paint_with == "auto"
    assert Picture(paint_with="webgl2").paint_with == "webgl2"
    with pytest.raises(traitlets.TraitError, match="paint_with"):
        Picture(paint_with="cuda")
