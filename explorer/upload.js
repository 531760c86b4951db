// The explorer's upload control: a button, a file chooser, and a line saying what happens.
//
// The file is read in the browser and sent to the kernel in pieces of chunk_bytes (1 MiB),
// each acknowledged by the kernel, so it passes any server's message size limit. A file over
// the upload limit is refused here at once, and a piece the kernel does not acknowledge within
// timeout_s turns into a message naming the file: the student never waits on silence.

const WINDOW = 4; // pieces in flight at once

function formatBytes(n) {
  if (n < 10000) return `${n.toLocaleString("en-US")} B`;
  if (n < 1e6) return `${(n / 1000).toFixed(1)} kB`;
  return `${(n / 1e6).toFixed(1)} MB`;
}

function render({ model, el }) {
  el.classList.add("svd-upload");
  const input = document.createElement("input");
  input.type = "file";
  input.accept = model.get("accept");
  input.style.display = "none";
  const button = document.createElement("button");
  button.className = "jupyter-button svd-upload-button";
  button.textContent = model.get("description");
  const line = document.createElement("span");
  line.className = "svd-upload-status";
  el.append(input, button, line);

  let current = null; // the upload in progress: {id, name, size, ...}

  function say(text, kind = "") {
    line.textContent = text;
    line.dataset.state = kind; // "", "error" or "done": the browser tests read it
  }

  function label(upload) {
    return `${upload.name} (${formatBytes(upload.size)})`;
  }

  function fail(upload, text) {
    clearTimeout(upload.timer);
    if (current === upload) current = null;
    say(text, "error");
  }

  function armTimer(upload) {
    clearTimeout(upload.timer);
    const seconds = model.get("timeout_s");
    upload.timer = setTimeout(() => {
      fail(upload,
        `⚠ ${label(upload)} did not reach the kernel: no answer for ${seconds} s after sending `
        + `${formatBytes(upload.acked)} of it. The kernel may be busy (wait for the running cell, then `
        + `upload again) or stopped (restart it), or this server refuses messages of `
        + `${formatBytes(model.get("chunk_bytes"))}. Try a smaller export of the picture, or `
        + `open the series with make lab.`);
    }, seconds * 1000);
  }

  function sendMore(upload) {
    while (upload.next < upload.chunks && upload.next - upload.done < WINDOW) {
      const index = upload.next++;
      // A copy in an ArrayBuffer of its own: some Jupyter front ends send the whole underlying
      // buffer of a typed-array view, not just the view.
      const piece = upload.data.slice(index * upload.chunk, (index + 1) * upload.chunk).buffer;
      model.send({ kind: "chunk", id: upload.id, index }, undefined, [piece]);
    }
  }

  async function start(file) {
    if (current) clearTimeout(current.timer); // a new file replaces one still on its way
    const chunk = model.get("chunk_bytes");
    const upload = current = {
      id: `${Date.now()}-${Math.random().toString(36).slice(2)}`, name: file.name, size: file.size,
      chunk, chunks: Math.ceil(file.size / chunk), next: 0, done: 0, acked: 0, timer: null,
    };
    const limit = model.get("limit");
    if (file.size > limit) {
      fail(upload,
        `⚠ ${label(upload)} is over the upload limit of ${formatBytes(limit)}, so it was not sent. `
        + `Export a smaller copy (a JPEG, or fewer pixels: the explorer scales images down to `
        + `${(model.get("max_pixels") / 1e6).toFixed(1)} megapixels anyway) and upload that.`);
      model.send({ kind: "refused", name: file.name, size: file.size });
      return;
    }
    say(`${label(upload)}: reading …`);
    let buffer;
    try {
      buffer = await file.arrayBuffer();
    } catch (error) {
      fail(upload, `⚠ ${label(upload)} could not be read by the browser: ${error}`);
      return;
    }
    if (current !== upload) return;
    upload.data = new Uint8Array(buffer);
    say(`${label(upload)}: sending …`);
    model.send({ kind: "start", id: upload.id, name: file.name, size: file.size, chunks: upload.chunks });
    armTimer(upload);
    sendMore(upload);
  }

  function onMessage(message) {
    const upload = current;
    if (!message || !upload || message.id !== upload.id) return;
    if (message.kind === "ack") {
      upload.done += 1;
      upload.acked = Math.min(upload.size, upload.done * upload.chunk);
      if (upload.done < upload.chunks) {
        say(`${label(upload)}: sending ${Math.floor((100 * upload.acked) / upload.size)} % …`);
        armTimer(upload);
        sendMore(upload);
      } else {
        clearTimeout(upload.timer); // all there: the kernel takes it from here
        upload.data = null;
      }
    } else if (message.kind === "status") {
      if (message.final) {
        clearTimeout(upload.timer);
        current = null;
      }
      say(message.text, message.error ? "error" : message.final ? "done" : "");
    }
  }

  button.addEventListener("click", () => input.click());
  input.addEventListener("change", () => {
    const file = input.files && input.files[0];
    input.value = ""; // so that choosing the same file again is a new upload
    if (file) start(file);
  });
  model.on("msg:custom", onMessage);
  return () => {
    if (current) clearTimeout(current.timer);
    model.off("msg:custom", onMessage);
  };
}

export default { render };
