// The explorer's picture: raw pixels from the kernel, painted into a <canvas> one for one.
//
// The kernel sends height x width x channels bytes (grey or RGB), already scaled to fit the
// space this view reports (view_size, in device pixels), so the browser neither decodes nor
// rescales anything: what is painted is exactly what the kernel computed. The canvas carries
// data-rank, the rank of the picture painted, set right after it is painted.

const GREY = new Uint32Array(256); // grey level -> RGBA as one little-endian 32-bit word
for (let g = 0; g < 256; g++) GREY[g] = (0xff000000 | (g << 16) | (g << 8) | g) >>> 0;

function bytesOf(value) {
  if (!value) return null;
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  return null;
}

function render({ model, el }) {
  el.classList.add("svd-picture");
  const bar = document.createElement("div");
  bar.className = "svd-picture-bar";
  const peep = document.createElement("button");
  peep.className = "jupyter-button svd-picture-peep";
  peep.title = "show every pixel of the image, one screen pixel each (scroll to move around)";
  const note = document.createElement("span");
  note.className = "svd-picture-note";
  bar.append(peep, note);
  const box = document.createElement("div");
  box.className = "svd-picture-box";
  const canvas = document.createElement("canvas");
  canvas.className = "svd-picture-canvas";
  box.append(canvas);
  el.append(bar, box);
  const context = canvas.getContext("2d", { alpha: false });
  let frame = null; // the ImageData reused while the size stays the same
  let painted = 0;
  let queued = false;

  function paint() {
    queued = false;
    const started = performance.now();
    const width = model.get("width"), height = model.get("height"), channels = model.get("channels");
    const pixels = bytesOf(model.get("pixels"));
    if (!width || !height || !pixels || pixels.length !== width * height * channels) return;
    if (canvas.width !== width || canvas.height !== height) {
      canvas.width = width;
      canvas.height = height;
      frame = null;
    }
    if (!frame) frame = context.createImageData(width, height);
    const out = new Uint32Array(frame.data.buffer);
    const n = width * height;
    if (channels === 1) {
      for (let i = 0; i < n; i++) out[i] = GREY[pixels[i]];
    } else {
      for (let i = 0, j = 0; i < n; i++, j += channels) {
        out[i] = (0xff000000 | (pixels[j + 2] << 16) | (pixels[j + 1] << 8) | pixels[j]) >>> 0;
      }
    }
    context.putImageData(frame, 0, 0);
    layout();
    painted += 1;
    canvas.dataset.painted = String(painted);
    canvas.dataset.paintMs = (performance.now() - started).toFixed(2); // bytes to canvas, in ms
    canvas.dataset.rank = String(model.get("rank"));
  }

  function layout() {
    // One canvas pixel per device pixel when the kernel scaled the picture to fit (or in the
    // 1:1 view); a picture smaller than the space is stretched to the width, as an <img> would be.
    const oneToOne = model.get("one_to_one");
    const exact = oneToOne || model.get("fitted");
    const ratio = window.devicePixelRatio || 1;
    canvas.style.width = exact ? `${canvas.width / ratio}px` : "100%";
    canvas.style.height = exact ? `${canvas.height / ratio}px` : "auto";
    canvas.style.maxHeight = exact ? "none" : "80vh";
    canvas.style.objectFit = "contain";
    box.classList.toggle("svd-picture-scroll", oneToOne);
    const [fullWidth, fullHeight] = [model.get("image_width"), model.get("image_height")];
    peep.textContent = oneToOne ? "fit to the window" : "1:1 pixels";
    note.textContent = oneToOne
      ? `every pixel of the ${fullHeight} × ${fullWidth} picture (rows × columns)`
      : model.get("fitted")
        ? `${fullHeight} × ${fullWidth} picture shown at ${canvas.height} × ${canvas.width} (rows × columns), scaled in the kernel`
        : "";
    peep.style.display = model.get("fitted") || oneToOne ? "" : "none";
  }

  function queuePaint() {
    // A message that changes several traits (pixels and rank) paints once, in the same task.
    if (!queued) {
      queued = true;
      queueMicrotask(paint);
    }
  }

  let reported = "";
  function reportSize() {
    // The space for the picture, in device pixels: the view's width, and 80 % of the window's
    // height (as max-height: 80vh). The kernel fits the picture into it.
    const ratio = window.devicePixelRatio || 1;
    const width = Math.floor(el.clientWidth * ratio);
    const height = Math.floor(window.innerHeight * 0.8 * ratio);
    if (width <= 0 || height <= 0) return; // hidden, or not attached yet
    const key = `${width}x${height}`;
    if (key === reported) return;
    reported = key;
    model.set("view_size", [width, height]);
    model.save_changes();
  }

  peep.addEventListener("click", () => {
    model.set("one_to_one", !model.get("one_to_one"));
    model.save_changes();
  });
  const onChange = () => queuePaint();
  model.on("change:pixels", onChange);
  model.on("change:rank", onChange);
  model.on("change:one_to_one", onChange);
  const observer = new ResizeObserver(() => requestAnimationFrame(reportSize));
  observer.observe(el);
  window.addEventListener("resize", reportSize);
  paint();
  return () => {
    observer.disconnect();
    window.removeEventListener("resize", reportSize);
    model.off("change:pixels", onChange);
    model.off("change:rank", onChange);
    model.off("change:one_to_one", onChange);
  };
}

export default { render };
