// The explorer's picture, painted into a <canvas> one pixel for one.
//
// Two sources (see picture.py):
// * live: the kernel sent U·Σ and Vᵀ at the size shown (float16 or float32, one plane for grey,
//   Y, Cb and Cr for colour). The page rebuilds the rank-k picture itself: it keeps the running
//   sum A_k of each plane and, when the rank changes, adds or subtracts the rank-one layers in
//   between, starting from a partial sum it keeps (every `spacing` ranks, built in the
//   background) when that is fewer layers. The rank comes from live_rank / live_chroma, which
//   the explorer links to its sliders in the browser: a move never waits for the kernel, and
//   works with no kernel at all. The grey level is to_uint8's: 255·A_k rounded half to even and
//   clipped (a Uint8ClampedArray does exactly that); colour goes through the same [T | b] matrix
//   as the kernel's (BT.601 full range).
// * pixels: raw bytes from the kernel (the error and original views, the 1:1 view).
// The canvas carries data-rank, the rank of the picture painted, set right after it is painted.

const GREY = new Uint32Array(256); // grey level -> RGBA as one little-endian 32-bit word
for (let g = 0; g < 256; g++) GREY[g] = (0xff000000 | (g << 16) | (g << 8) | g) >>> 0;

// Memory the page may spend on partial sums, for all planes together.
const CHECKPOINT_BYTES = 96 * 2 ** 20;
// Time slice of the background work that builds the partial sums, in ms.
const SLICE_MS = 4;
// After a move, how long the readouts may lag before the page says they need the kernel.
const KERNEL_WAIT_MS = 2000;

let HALF = null; // float16 bit pattern -> its value
function halfTable() {
  if (HALF) return HALF;
  HALF = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1, exponent = (h >> 10) & 0x1f, fraction = h & 0x3ff;
    HALF[h] = exponent === 0 ? sign * 2 ** -14 * (fraction / 1024)
      : exponent === 31 ? (fraction ? NaN : sign * Infinity)
        : sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
  }
  return HALF;
}

function bytesOf(value) {
  if (!value) return null;
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  return null;
}

function decodeFactors(bytes, dtype, count) {
  // The factors as one Float32Array (copied: the message's buffer may be unaligned).
  const size = dtype === "float32" ? 4 : 2;
  if (bytes.length !== count * size) return null;
  const aligned = bytes.byteOffset % size === 0 ? bytes : bytes.slice();
  if (dtype === "float32") return new Float32Array(aligned.buffer, aligned.byteOffset, count).slice();
  const bits = new Uint16Array(aligned.buffer, aligned.byteOffset, count), table = halfTable();
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = table[bits[i]];
  return out;
}

// The layers of one picture (1 or 3 planes) and the running sums rebuilt from them.
class Layers {
  constructor(planes, rank, rows, cols, values) {
    Object.assign(this, { planes, rank, rows, cols });
    const n = rows * cols, per = rank * (rows + cols);
    this.plane = [];
    for (let p = 0; p < planes; p++) {
      const at = p * per;
      this.plane.push({
        us: values.subarray(at, at + rank * rows), // layer l: U·Σ's column l, `rows` values
        vh: values.subarray(at + rank * rows, at + per), // layer l: Vᵀ's row l, `cols` values
        sum: new Float32Array(n), k: 0, sums: new Map(), // rank c -> A_c, once built
      });
    }
    const most = Math.max(1, Math.floor(CHECKPOINT_BYTES / (4 * n * planes)));
    this.spacing = Math.max(8, Math.ceil(rank / most));
    this.building = { p: 0, k: 0, sum: new Float32Array(n) };
    this.layerMs = null; // measured cost of one layer, for the report
  }

  add(plane, sum, from, to, sign) {
    // sum += sign × layers from+1 .. to (ranks, 1-based), each a rows x cols outer product.
    const { rows, cols } = this, { us, vh } = plane;
    for (let l = from; l < to; l++) {
      const u = us.subarray(l * rows, (l + 1) * rows), v = vh.subarray(l * cols, (l + 1) * cols);
      for (let i = 0, o = 0; i < rows; i++, o += cols) {
        const a = sign * u[i];
        if (a === 0) continue;
        for (let j = 0; j < cols; j++) sum[o + j] += a * v[j];
      }
    }
  }

  moveTo(p, k) {
    // Make plane p's running sum A_k, with the fewest layers: from where it is, from zero, or
    // from the nearest partial sum built so far (a copy costs about one layer).
    const plane = this.plane[p];
    if (plane.k === k) return 0;
    let start = plane.k, cost = Math.abs(k - plane.k), from = null;
    if (k + 1 < cost) { start = 0; cost = k + 1; from = 0; }
    for (const [c, sum] of plane.sums) {
      if (Math.abs(k - c) + 1 < cost) { start = c; cost = Math.abs(k - c) + 1; from = sum; }
    }
    if (from === 0) plane.sum.fill(0);
    else if (from) plane.sum.set(from);
    const t = performance.now();
    if (k > start) this.add(plane, plane.sum, start, k, 1);
    else if (k < start) this.add(plane, plane.sum, k, start, -1);
    const layers = Math.abs(k - start);
    if (layers >= 4) this.layerMs = (performance.now() - t) / layers;
    plane.k = k;
    return layers;
  }

  buildSome() {
    // Background work: the partial sums A_spacing, A_2·spacing, ..., A_rank of each plane in
    // turn, for SLICE_MS at most. Returns true while there is more to do.
    const stop = performance.now() + SLICE_MS, b = this.building;
    while (b.p < this.planes && performance.now() < stop) {
      const plane = this.plane[b.p], next = Math.min(this.rank, b.k + 1);
      this.add(plane, b.sum, b.k, next, 1);
      b.k = next;
      if (b.k % this.spacing === 0 || b.k === this.rank) plane.sums.set(b.k, b.sum.slice());
      if (b.k === this.rank) { b.p += 1; b.k = 0; b.sum.fill(0); }
    }
    return b.p < this.planes;
  }
}

// -- WebGL2: the whole rank-k picture in one pass of a fragment shader -------------------------
//
// The factors go up once as RGBA32F textures, four layers to a texel: U·Σ as `rows` x
// ceil(rank / 4) texels a plane, Vᵀ as `cols` x ceil(rank / 4), the planes stacked. For each
// pixel (i, j) the shader sums the first k layers, u_l[i]·v_l[j] (float32, four at a time),
// turns (Y, Cb, Cr) into RGB with the same [T | b] as the JS path (grey: 255 x the plane),
// rounds half to even (roundEven), clips to 0-255 and writes level/255, which the GL's
// float -> 8-bit conversion (round to nearest, as GLES 3.0 prefers) gives back exactly. The
// picture is drawn on a canvas of its own, then copied into the explorer's canvas (drawImage),
// so both paths paint the same element and the tests read back what is shown.
// The bound: the textures hold the float16 factors' exact values, and a float32 sum of k terms
// is within 255·γ_k·max_i‖(UΣ)_i‖·max_j‖V_j‖ levels of the exact sum (γ_k ≈ k·2⁻²⁴; 0.08 level at
// k = 1000 for the 1 MP test picture; the JS running sum's k counts every layer added or taken
// away since it last started from zero or a partial sum). So the shader and the JS path give the
// same level except where 255·A_k is that close to a half, and then differ by one; against the
// kernel's float32 picture both are within one level (test_browser.py reads the canvas back).

// Renderers that run shaders on the CPU: a pixel that sums k layers costs k fetches there,
// far more than the JS running sum's one layer a key press (measured: tests/test_browser.py).
const SOFTWARE_GL = /swiftshader|llvmpipe|softpipe|software|basic render|mesa offscreen/i;

const VERTEX_SHADER = `#version 300 es
void main() {  // one triangle that covers the viewport
  vec2 p = vec2(float((gl_VertexID << 1) & 2), float(gl_VertexID & 2));
  gl_Position = vec4(2.0 * p - 1.0, 0.0, 1.0);
}`;

const FRAGMENT_SHADER = `#version 300 es
precision highp float;
precision highp int;
uniform highp sampler2D us;  // texel (i, p·G + q): U·Σ[i, 4q .. 4q + 3] of plane p
uniform highp sampler2D vh;  // texel (j, p·G + q): Vᵀ[4q .. 4q + 3, j] of plane p
uniform int planes, perPlane, rows;  // perPlane = G = ceil(rank / 4)
uniform ivec3 groups;  // ceil(k / 4) for each plane
uniform vec4 last[3];  // which of the last group's four layers count
uniform mat3 toRgb;  // RGB = toRgb · (Y, Cb, Cr) + offset, on the 0-255 scale
uniform vec3 offset;
out vec4 colour;
float planeSum(int p, int i, int j, int count, vec4 mask) {
  float s = 0.0;
  int base = p * perPlane;
  for (int q = 0; q < count - 1; q++) {
    s += dot(texelFetch(us, ivec2(i, base + q), 0), texelFetch(vh, ivec2(j, base + q), 0));
  }
  int q = base + count - 1;
  return s + dot(texelFetch(us, ivec2(i, q), 0) * mask, texelFetch(vh, ivec2(j, q), 0));
}
void main() {
  int j = int(gl_FragCoord.x), i = rows - 1 - int(gl_FragCoord.y);  // GL's rows go up
  vec3 rgb;
  if (planes == 1) {
    rgb = vec3(255.0 * planeSum(0, i, j, groups.x, last[0]));
  } else {
    vec3 ycc = vec3(planeSum(0, i, j, groups.x, last[0]), planeSum(1, i, j, groups.y, last[1]),
                    planeSum(2, i, j, groups.z, last[2]));
    rgb = toRgb * ycc + offset;
  }
  colour = vec4(clamp(roundEven(rgb), 0.0, 255.0) / 255.0, 1.0);
}`;

function packLayers(layers, which, width) {
  // One plane after another: texel (x, p·G + q) holds layers 4q .. 4q + 3 at x (0 past rank).
  const groups = Math.ceil(layers.rank / 4), out = new Float32Array(4 * width * groups * layers.planes);
  layers.plane.forEach((plane, p) => {
    const values = plane[which];
    for (let l = 0; l < layers.rank; l++) {
      const row = (p * groups + (l >> 2)) * width * 4 + (l & 3);
      for (let x = 0, at = l * width; x < width; x++) out[row + 4 * x] = values[at + x];
    }
  });
  return { out, height: groups * layers.planes };
}

class GLPainter {
  // Paints Layers at given ranks with WebGL2. `GLPainter.open` returns {painter} or {why}.
  static open(layers, force, onLost) {
    const glCanvas = document.createElement("canvas");
    let gl = null;
    try {
      gl = glCanvas.getContext("webgl2", {
        alpha: false, antialias: false, depth: false, stencil: false, premultipliedAlpha: false,
        preserveDrawingBuffer: false, powerPreference: "high-performance",
      });
    } catch (err) { gl = null; }
    if (!gl) return { why: "this browser has no WebGL2 (or it could not make a context)" };
    const info = gl.getExtension("WEBGL_debug_renderer_info");
    const renderer = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
    const lose = () => { const ext = gl.getExtension("WEBGL_lose_context"); if (ext) ext.loseContext(); };
    if (SOFTWARE_GL.test(renderer) && !force) {
      lose();
      return { why: `software WebGL2 (${renderer}): the JS running sum is quicker`, renderer };
    }
    const most = gl.getParameter(gl.MAX_TEXTURE_SIZE), groups = Math.ceil(layers.rank / 4);
    if (Math.max(layers.rows, layers.cols, groups * layers.planes) > most) {
      lose();
      return { why: `the factors need textures larger than this GPU's ${most}`, renderer };
    }
    try {
      return { painter: new GLPainter(gl, glCanvas, layers, renderer, onLost), renderer };
    } catch (err) {
      lose();
      return { why: `WebGL2 failed: ${err.message}`, renderer };
    }
  }

  constructor(gl, glCanvas, layers, renderer, onLost) {
    Object.assign(this, { gl, glCanvas, layers, renderer, lost: false });
    glCanvas.addEventListener("webglcontextlost", (event) => {
      event.preventDefault();
      this.lost = true;
      onLost(this);
    });
    const shader = (type, source) => {
      const s = gl.createShader(type);
      gl.shaderSource(s, source);
      gl.compileShader(s);
      if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(s) || "shader");
      return s;
    };
    const program = gl.createProgram();
    gl.attachShader(program, shader(gl.VERTEX_SHADER, VERTEX_SHADER));
    gl.attachShader(program, shader(gl.FRAGMENT_SHADER, FRAGMENT_SHADER));
    gl.linkProgram(program);
    if (!gl.getProgramParameter(program, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(program) || "link");
    gl.useProgram(program);
    gl.bindVertexArray(gl.createVertexArray());
    const texture = (unit, name, width) => {
      const { out, height } = packLayers(layers, name, width);
      gl.activeTexture(gl.TEXTURE0 + unit);
      gl.bindTexture(gl.TEXTURE_2D, gl.createTexture());
      for (const p of [gl.TEXTURE_MIN_FILTER, gl.TEXTURE_MAG_FILTER]) gl.texParameteri(gl.TEXTURE_2D, p, gl.NEAREST);
      gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
      gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA32F, width, height, 0, gl.RGBA, gl.FLOAT, out);
      gl.uniform1i(gl.getUniformLocation(program, name), unit);
    };
    texture(0, "us", layers.rows);
    texture(1, "vh", layers.cols);
    this.at = {};
    for (const name of ["planes", "perPlane", "rows", "groups", "last", "toRgb", "offset"]) {
      this.at[name] = gl.getUniformLocation(program, name);
    }
    gl.uniform1i(this.at.planes, layers.planes);
    gl.uniform1i(this.at.perPlane, Math.ceil(layers.rank / 4));
    gl.uniform1i(this.at.rows, layers.rows);
    glCanvas.width = layers.cols;
    glCanvas.height = layers.rows;
    gl.viewport(0, 0, layers.cols, layers.rows);
    if (gl.getError() !== gl.NO_ERROR) throw new Error("could not upload the factors");
  }

  paint(ranks, toRgb, target) {
    // Draw the picture at ranks [k] (grey) or [k, kc, kc] (colour), then copy it to `target`
    // (a 2D context of the same size). Returns false if the context is gone.
    const { gl } = this;
    if (this.lost || gl.isContextLost()) return false;
    const groups = [1, 1, 1], last = new Float32Array(12);
    ranks.forEach((k, p) => {
      groups[p] = Math.ceil(k / 4);
      for (let c = 0; c < 4; c++) last[4 * p + c] = 4 * (groups[p] - 1) + c < k ? 1 : 0;
    });
    gl.uniform3i(this.at.groups, groups[0], groups[1], groups[2]);
    gl.uniform4fv(this.at.last, last);
    if (ranks.length === 3) {
      const t = toRgb; // rows of [T | b]; mat3 is column-major
      gl.uniformMatrix3fv(this.at.toRgb, false, [t[0], t[4], t[8], t[1], t[5], t[9], t[2], t[6], t[10]]);
      gl.uniform3f(this.at.offset, t[3], t[7], t[11]);
    }
    gl.drawArrays(gl.TRIANGLES, 0, 3);
    target.drawImage(this.glCanvas, 0, 0);
    return !gl.isContextLost();
  }

  close() {
    const ext = this.gl.getExtension("WEBGL_lose_context");
    if (ext && !this.gl.isContextLost()) ext.loseContext();
    this.lost = true;
  }
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
  const lag = document.createElement("span");
  lag.className = "svd-picture-readouts";
  bar.append(peep, note, lag);
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
  let layers = null, layersOf = null; // the Layers, and the factors message they came from
  let building = null;
  let shown = null; // {rank, chroma} painted from factors, or null
  let waiting = null; // timer: the readouts have not caught up
  let glPainter = null, glOf = null, glWanted = null; // the WebGL2 painter, its layers, paint_with
  let glWhy = "", glRenderer = ""; // why the JS path paints; the WebGL2 renderer, if any

  function isLive() {
    const [planes, rank] = model.get("factor_shape");
    return model.get("live") && !model.get("one_to_one") && planes > 0 && rank > 0;
  }

  function currentLayers() {
    const factors = model.get("factors");
    if (layers && layersOf === factors) return layers;
    const [planes, rank, rows, cols] = model.get("factor_shape");
    const bytes = bytesOf(factors);
    const values = bytes && decodeFactors(bytes, model.get("factor_dtype"), planes * rank * (rows + cols));
    layers = values ? new Layers(planes, rank, rows, cols, values) : null;
    layersOf = factors;
    if (building) clearTimeout(building);
    building = null;
    delete canvas.dataset.sums;
    return layers;
  }

  function buildSums(mine) {
    // The JS path's partial sums, built in the background once it paints (WebGL2 needs none).
    if (canvas.dataset.sums || layers !== mine) return;
    canvas.dataset.sums = "building";
    const started = performance.now();
    const work = () => {
      if (layers !== mine) return;
      building = mine.buildSome() ? setTimeout(work, 0) : null;
      if (building === null) { // every partial sum is in: a jump costs spacing / 2 layers at most
        canvas.dataset.sums = "built";
        canvas.dataset.sumsMs = (performance.now() - started).toFixed(0);
        canvas.dataset.spacing = String(mine.spacing);
      }
    };
    building = setTimeout(work, 0);
  }

  function painterFor(rebuilt) {
    // The WebGL2 painter for these layers, or null (then glWhy says why the JS path paints).
    const wanted = model.get("paint_with");
    if (glOf === rebuilt && glWanted === wanted) return glPainter;
    if (glPainter) glPainter.close();
    glPainter = null;
    glOf = rebuilt;
    glWanted = wanted;
    if (wanted === "js") {
      glWhy = "paint_with is \"js\"";
      return null;
    }
    const opened = GLPainter.open(rebuilt, wanted === "webgl2", (lost) => {
      if (lost !== glPainter) return;
      glPainter = null;
      glWhy = "the WebGL2 context was lost";
      queuePaint();
    });
    glPainter = opened.painter || null;
    canvas.webgl = glPainter && glPainter.glCanvas; // the canvas the shader draws on (tests lose it)
    glWhy = opened.why || "";
    glRenderer = opened.renderer || "";
    return glPainter;
  }

  function size(width, height) {
    if (canvas.width !== width || canvas.height !== height) {
      canvas.width = width;
      canvas.height = height;
      frame = null;
    }
  }

  function image(width, height) {
    size(width, height);
    if (!frame) {
      frame = context.createImageData(width, height);
      new Uint32Array(frame.data.buffer).fill(0xff000000);
    }
    return frame;
  }

  function paintLive() {
    const rebuilt = currentLayers();
    if (!rebuilt) return null;
    const { planes, rank, rows, cols } = rebuilt;
    const clamp = (k) => Math.min(Math.max(1, Math.round(k) || 1), rank);
    const k = clamp(model.get("live_rank")), kc = planes === 3 ? clamp(model.get("live_chroma")) : 0;
    const painter = painterFor(rebuilt);
    if (painter) {
      size(cols, rows);
      if (painter.paint(planes === 3 ? [k, kc, kc] : [k], model.get("to_rgb"), context)) {
        Object.assign(canvas.dataset, { path: "webgl2", layers: String(k + 2 * kc), glRenderer: painter.renderer });
        delete canvas.dataset.pathWhy;
        shown = { rank: k, chroma: kc, planes, held: rank };
        return k;
      }
      glPainter = null;
      glWhy = "the WebGL2 context was lost";
    }
    buildSums(rebuilt);
    let moved = rebuilt.moveTo(0, k);
    if (planes === 3) moved += rebuilt.moveTo(1, kc) + rebuilt.moveTo(2, kc);
    const data = image(cols, rows).data, n = rows * cols;
    if (planes === 1) {
      const s = rebuilt.plane[0].sum, grey = new Uint8ClampedArray(data.buffer, 0, n);
      // 255·A_k rounded half to even and clipped (ToUint8Clamp), then spread to RGBA in place,
      // from the end so that no grey value is overwritten before it is read
      for (let i = 0; i < n; i++) grey[i] = 255 * s[i];
      const out = new Uint32Array(data.buffer);
      for (let i = n - 1; i >= 0; i--) out[i] = GREY[grey[i]];
    } else {
      const [y, cb, cr] = rebuilt.plane.map((plane) => plane.sum), t = model.get("to_rgb");
      for (let i = 0, j = 0; i < n; i++, j += 4) {
        const a = y[i], b = cb[i], c = cr[i];
        data[j] = t[0] * a + t[1] * b + t[2] * c + t[3];
        data[j + 1] = t[4] * a + t[5] * b + t[6] * c + t[7];
        data[j + 2] = t[8] * a + t[9] * b + t[10] * c + t[11];
      }
    }
    context.putImageData(frame, 0, 0);
    Object.assign(canvas.dataset, { path: "js", layers: String(moved), pathWhy: glWhy });
    if (glRenderer) canvas.dataset.glRenderer = glRenderer;
    if (rebuilt.layerMs !== null) canvas.dataset.layerMs = rebuilt.layerMs.toFixed(3);
    shown = { rank: k, chroma: kc, planes, held: rank };
    return k;
  }

  function paintPixels() {
    const width = model.get("width"), height = model.get("height"), channels = model.get("channels");
    const pixels = bytesOf(model.get("pixels"));
    if (!width || !height || !pixels || pixels.length !== width * height * channels) return null;
    const out = new Uint32Array(image(width, height).data.buffer);
    const n = width * height;
    if (channels === 1) {
      for (let i = 0; i < n; i++) out[i] = GREY[pixels[i]];
    } else {
      for (let i = 0, j = 0; i < n; i++, j += channels) {
        out[i] = (0xff000000 | (pixels[j + 2] << 16) | (pixels[j + 1] << 8) | pixels[j]) >>> 0;
      }
    }
    context.putImageData(frame, 0, 0);
    shown = null;
    return model.get("rank");
  }

  function paint() {
    queued = false;
    const started = performance.now();
    const live = isLive();
    const rank = live ? paintLive() : paintPixels();
    if (rank === null) return;
    layout(live);
    painted += 1;
    canvas.dataset.painted = String(painted);
    canvas.dataset.source = live ? "factors" : "pixels";
    canvas.dataset.paintMs = (performance.now() - started).toFixed(2); // to the canvas, in ms
    if (live && shown.planes === 3) canvas.dataset.chroma = String(shown.chroma);
    canvas.dataset.rank = String(rank);
    readoutsNote();
  }

  function readoutsNote() {
    // Say when the readouts (computed in the kernel) are for another rank than the picture.
    const wanted = shown && { rank: model.get("live_rank"), chroma: model.get("live_chroma") };
    const kernel = { rank: model.get("rank"), chroma: model.get("chroma_rank") };
    const behind = shown && (kernel.rank !== shown.rank || (shown.planes === 3 && kernel.chroma !== shown.chroma));
    const name = (r) => (shown && shown.planes === 3 ? `luma rank ${r.rank}, chroma rank ${r.chroma}` : `rank ${r.rank}`);
    lag.classList.toggle("svd-picture-stale", false);
    if (shown && (wanted.rank > shown.held || (shown.planes === 3 && wanted.chroma > shown.held))) {
      lag.textContent = `this page holds ranks up to ${shown.held}: ${name(wanted)} needs the kernel`;
      lag.classList.toggle("svd-picture-stale", true);
    } else if (!behind) {
      lag.textContent = "";
    } else {
      lag.textContent = `the readouts are for ${name(kernel)}, updating…`;
    }
    if (waiting) clearTimeout(waiting);
    waiting = !behind ? null : setTimeout(() => {
      waiting = null;
      lag.textContent = `the readouts are for ${name(kernel)}: those for ${name(shown)} need the kernel, `
        + "which is not answering: run the notebook for the readouts";
      lag.classList.toggle("svd-picture-stale", true);
    }, KERNEL_WAIT_MS);
  }

  function layout(live) {
    // One canvas pixel per device pixel when the picture was scaled to fit (or in the 1:1 view);
    // a picture smaller than the space is stretched to the width, as an <img> would be.
    const oneToOne = model.get("one_to_one");
    const [fullWidth, fullHeight] = [model.get("image_width"), model.get("image_height")];
    const fitted = live ? canvas.width !== fullWidth || canvas.height !== fullHeight : model.get("fitted");
    const exact = oneToOne || fitted;
    const ratio = window.devicePixelRatio || 1;
    canvas.style.width = exact ? `${canvas.width / ratio}px` : "100%";
    canvas.style.height = exact ? `${canvas.height / ratio}px` : "auto";
    canvas.style.maxHeight = exact ? "none" : "80vh";
    canvas.style.objectFit = "contain";
    box.classList.toggle("svd-picture-scroll", oneToOne);
    peep.textContent = oneToOne ? "fit to the window" : "1:1 pixels";
    note.textContent = oneToOne
      ? `every pixel of the ${fullHeight} × ${fullWidth} picture (rows × columns)`
      : fitted
        ? `${fullHeight} × ${fullWidth} picture shown at ${canvas.height} × ${canvas.width} (rows × columns)`
          + (live ? ", rebuilt here from its factors" : ", scaled in the kernel")
        : "";
    peep.style.display = fitted || oneToOne ? "" : "none";
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
    try {
      model.save_changes();
    } catch (err) { /* no kernel (a static page): the picture stays at the size it has */ }
  }

  peep.addEventListener("click", () => {
    model.set("one_to_one", !model.get("one_to_one"));
    model.save_changes();
  });
  const onPixels = () => { if (!isLive()) queuePaint(); };
  const onLive = () => { if (isLive()) queuePaint(); };
  const onKernelRank = () => { if (isLive()) readoutsNote(); else queuePaint(); };
  const events = {
    "change:pixels": onPixels, "change:rank": onKernelRank, "change:chroma_rank": onKernelRank,
    "change:one_to_one": queuePaint, "change:live": queuePaint, "change:factors": onLive,
    "change:live_rank": onLive, "change:live_chroma": onLive, "change:to_rgb": onLive,
    "change:paint_with": onLive,
  };
  for (const [name, handler] of Object.entries(events)) model.on(name, handler);
  const observer = new ResizeObserver(() => requestAnimationFrame(reportSize));
  observer.observe(el);
  window.addEventListener("resize", reportSize);
  paint();
  return () => {
    observer.disconnect();
    window.removeEventListener("resize", reportSize);
    for (const [name, handler] of Object.entries(events)) model.off(name, handler);
    if (building) clearTimeout(building);
    if (waiting) clearTimeout(waiting);
    if (glPainter) glPainter.close();
    glPainter = null;
    layers = null;
  };
}

export default { render };
