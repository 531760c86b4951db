"""Upload: the explorer's "Upload image …" control, for files as big as a camera makes.

A Jupyter server drops any message from the browser over its size limit (Tornado's
default is 10 MiB, and a phone photo is often larger) without a word. So this
control reads the chosen file in the browser and sends it in pieces of
``CHUNK_BYTES``, each acknowledged by the kernel; every server lets those through.
The student sees at once the file's name and size, then the progress, then
"decoding …", then the picture or a message:

- a file over ``UPLOAD_LIMIT_BYTES`` is refused in the browser, with what to do;
- a piece with no answer within ``ACK_TIMEOUT_S`` (a busy or stopped kernel, or a
  server that refuses even 1 MiB) gives a message naming the file and its size;
- a file that is not a usable image gets the loader's own message.

Written with anywidget: plain JavaScript in ``upload.js``, no front-end build.
"""

from __future__ import annotations

from pathlib import Path

import anywidget
import traitlets

from helpers import MAX_PIXELS

_HERE = Path(__file__).resolve().parent

#: The largest file the explorer accepts: 64 MB. This is the one place the limit is
#: stated; jupyter_config/ lets servers take messages this large too (for other
#: upload widgets), and tests/test_frontend.py checks that it does.
UPLOAD_LIMIT_BYTES = 64_000_000

#: Size of the pieces a file is sent in: far below any server's message limit.
CHUNK_BYTES = 1 << 20

#: Seconds to wait for the kernel to acknowledge a piece before telling the student.
ACK_TIMEOUT_S = 20.0

_CSS = """
.svd-upload { display: flex; align-items: center; gap: 8px; flex-wrap: wrap; }
.svd-upload-status { font-size: 12px; }
.svd-upload-status[data-state="error"] { color: #b00020; }
"""


def describe_size(n):
    """A file size as people read it (the same units as the browser side).

    >>> describe_size(11_612_345), describe_size(524_288)
    ('11.6 MB', '524.3 kB')
    """
    if n < 10_000:
        return f"{n:,} B"
    return f"{n / 1000:.1f} kB" if n < 1_000_000 else f"{n / 1e6:.1f} MB"


class Upload(anywidget.AnyWidget):
    """A file upload button that sends the file in acknowledged pieces.

    ``on_file(name, data)`` is called with the file's name and bytes once all of
    it has arrived. It returns the line to show when it worked, and raises when
    it did not: the exception's message is shown (``ImageError`` names the file).

    >>> upload = Upload(on_file=lambda name, data: f"{name}: {len(data)} bytes")
    >>> upload.limit == UPLOAD_LIMIT_BYTES
    True
    """

    _esm = _HERE / "upload.js"
    _css = _CSS

    description = traitlets.Unicode("Upload image …").tag(sync=True)
    accept = traitlets.Unicode("image/*").tag(sync=True)
    limit = traitlets.Int(UPLOAD_LIMIT_BYTES).tag(sync=True)
    chunk_bytes = traitlets.Int(CHUNK_BYTES).tag(sync=True)
    timeout_s = traitlets.Float(ACK_TIMEOUT_S).tag(sync=True)
    max_pixels = traitlets.Int(MAX_PIXELS).tag(sync=True)

    def __init__(self, on_file=None, **kwargs):
        super().__init__(**kwargs)
        self.on_file = on_file
        self.received = []  # (name, size) of every complete file, oldest first
        self.messages = []  # every message sent to the browser (a few per upload), oldest first
        self._incoming = None
        self.on_msg(self._on_message)

    def say(self, text, *, error=False, final=False):
        """Show ``text`` on the control's status line (for the upload in progress, if any)."""
        upload_id = self._incoming["id"] if self._incoming else self._last_id
        self._tell({"kind": "status", "id": upload_id, "text": text, "error": error, "final": final})

    _last_id = None

    def receive(self, name, data):
        """Take a file as the browser sends it: a start message, then acknowledged pieces.

        What happens when a student picks a file, without a browser (tests, or a
        file on the kernel's disk). Returns the messages the kernel sent back.

        >>> upload = Upload(on_file=lambda name, data: f"{name}: {len(data)} bytes")
        >>> upload.receive("a.bin", b"abc")[-1]["text"]
        'a.bin: 3 bytes'
        """
        first = len(self.messages)
        chunks = -(-len(data) // self.chunk_bytes)
        upload_id = f"receive-{len(self.received)}"
        self._handle_custom_msg(  # what ipywidgets does with a message from the browser
            {"kind": "start", "id": upload_id, "name": name, "size": len(data), "chunks": chunks}, [])
        for index in range(chunks):
            piece = memoryview(data)[index * self.chunk_bytes:(index + 1) * self.chunk_bytes]
            self._handle_custom_msg({"kind": "chunk", "id": upload_id, "index": index}, [piece])
        return self.messages[first:]

    def _tell(self, content):
        """Send a message to the browser, and keep it in ``messages``."""
        self.messages.append(content)
        self.send(content)

    def _on_message(self, _widget, content, buffers):
        kind = content.get("kind")
        if kind == "start":
            self._start(content)
        elif kind == "chunk":
            self._chunk(content, buffers)
        elif kind == "refused":  # over the limit: the browser said why; nothing was sent
            self._incoming = None

    def _start(self, content):
        size, chunks = int(content["size"]), int(content["chunks"])
        name = str(content.get("name") or "the uploaded file")
        self._incoming = {"id": content["id"], "name": name, "size": size, "chunks": chunks,
                          "data": bytearray(size), "arrived": set()}
        self._last_id = content["id"]
        if size > self.limit:  # the browser checks this first; a message from elsewhere might not
            self.say(f"⚠ {name} ({describe_size(size)}) is over the upload limit of "
                     f"{describe_size(self.limit)}", error=True, final=True)
            self._incoming = None
        elif chunks == 0:
            self._deliver()

    def _chunk(self, content, buffers):
        upload = self._incoming
        if upload is None or content.get("id") != upload["id"] or not buffers:
            return  # a piece of an upload that was replaced or refused
        index = int(content["index"])
        piece = memoryview(buffers[0]).cast("B")
        start = index * self.chunk_bytes
        if not 0 <= index < upload["chunks"] or start + len(piece) > upload["size"]:
            self.say(f"⚠ {upload['name']}: a piece arrived out of place; upload it again",
                     error=True, final=True)
            self._incoming = None
            return
        upload["data"][start:start + len(piece)] = piece
        upload["arrived"].add(index)
        self._tell({"kind": "ack", "id": upload["id"], "index": index})
        if len(upload["arrived"]) == upload["chunks"]:
            self._deliver()

    def _deliver(self):
        upload = self._incoming
        name, size = upload["name"], upload["size"]
        data = bytes(upload["data"])
        upload["data"] = None
        self.say(f"{name} ({describe_size(size)}): decoding …")
        self.received.append((name, size))
        try:
            done = self.on_file(name, data) if self.on_file else f"{name}: received"
        except Exception as err:  # show why, keep the control alive
            why = str(err) if isinstance(err, ValueError) else f"{type(err).__name__}: {err}"
            self.say(f"⚠ {why}", error=True, final=True)
        else:
            self.say(done or f"{name}: done", final=True)
        finally:
            self._incoming = None
