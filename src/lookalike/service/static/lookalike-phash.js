// lookalike's 64-bit pHash in JavaScript, re-implemented from the server's description
// (src/lookalike/decode/image.py, src/lookalike/fingerprints/{grid,dct}.py):
//
//   upright RGBA pixels
//   -> alpha composited onto white (onto black when the picture on white is blank but the alpha varies)
//   -> box-reduced by the largest power of two (at most 8) that keeps the short side >= 256
//      (the server decodes JPEGs at that scale; other formats it box-reduces the same way)
//   -> halved (exact 2 x 2 means, odd last row/column dropped) while the short side is >= 256
//   -> area-averaged to a 64 x 64 colour grid -> BT.601 luma -> 2 x 2 block means (32 x 32)
//   -> orthonormal DCT-II, the 8 x 8 lowest frequencies, row-major
//   -> bit i set when coefficient i is above the median of the 64, first coefficient = top bit.
//
// Pure functions over typed arrays: the worker feeds it canvas pixels; nothing here touches the DOM.

export const GRID = 64;
export const WORKING_SIDE = 256;
const BLANK_LEVELS = 2;
const LUMA = [0.299, 0.587, 0.114];

/** Composite straight RGBA (canvas ImageData) to RGB under the server's alpha policy. */
export function flattenAlpha(rgba, width, height) {
  const n = width * height;
  const rgb = new Uint8Array(n * 3);
  let opaque = true;
  for (let i = 3; i < rgba.length; i += 4) {
    if (rgba[i] !== 255) { opaque = false; break; }
  }
  if (opaque) {
    for (let i = 0, j = 0; i < n; i++, j += 3) {
      rgb[j] = rgba[i * 4]; rgb[j + 1] = rgba[i * 4 + 1]; rgb[j + 2] = rgba[i * 4 + 2];
    }
    return rgb;
  }
  const lo = [255, 255, 255], hi = [0, 0, 0];
  let aLo = 255, aHi = 0;
  for (let i = 0, j = 0; i < n; i++, j += 3) {
    const a = rgba[i * 4 + 3];
    if (a < aLo) aLo = a;
    if (a > aHi) aHi = a;
    for (let c = 0; c < 3; c++) {
      const v = Math.floor((rgba[i * 4 + c] * a + 255 * (255 - a) + 127) / 255);
      rgb[j + c] = v;
      if (v < lo[c]) lo[c] = v;
      if (v > hi[c]) hi[c] = v;
    }
  }
  const spread = Math.max(hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]);
  if (spread <= BLANK_LEVELS && aHi - aLo > BLANK_LEVELS) {
    for (let i = 0, j = 0; i < n; i++, j += 3) {
      const a = rgba[i * 4 + 3];
      for (let c = 0; c < 3; c++) rgb[j + c] = Math.floor((rgba[i * 4 + c] * a + 127) / 255);
    }
  }
  return rgb;
}

/** The largest power of two (at most 8) that keeps shortSide / factor >= minSide. */
export function reduction(shortSide, minSide = WORKING_SIDE) {
  let factor = 1;
  while (factor < 8 && Math.floor(shortSide / (factor * 2)) >= minSide) factor *= 2;
  return factor;
}

/** Mean of each factor x factor block, rounded half up; edge blocks average what they have. */
export function boxReduce(rgb, width, height, factor) {
  const w = Math.ceil(width / factor), h = Math.ceil(height / factor);
  const out = new Uint8Array(w * h * 3);
  const sums = new Float64Array(w * 3);
  for (let by = 0; by < h; by++) {
    sums.fill(0);
    const y0 = by * factor, y1 = Math.min(height, y0 + factor);
    for (let y = y0; y < y1; y++) {
      const row = y * width * 3;
      for (let x = 0; x < width; x++) {
        const s = Math.floor(x / factor) * 3, p = row + x * 3;
        sums[s] += rgb[p]; sums[s + 1] += rgb[p + 1]; sums[s + 2] += rgb[p + 2];
      }
    }
    for (let bx = 0; bx < w; bx++) {
      const count = (y1 - y0) * (Math.min(width, bx * factor + factor) - bx * factor);
      for (let c = 0; c < 3; c++) {
        out[(by * w + bx) * 3 + c] = Math.floor((sums[bx * 3 + c] + Math.floor(count / 2)) / count);
      }
    }
  }
  return { rgb: out, width: w, height: h };
}

/** Exact 2 x 2 box average (a + b + c + d + 2) >> 2; an odd last row or column is dropped. */
export function halve(rgb, width, height) {
  const w = width >> 1, h = height >> 1;
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    const r0 = 2 * y * width * 3, r1 = r0 + width * 3;
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) {
        const p = 6 * x + c;
        out[(y * w + x) * 3 + c] = (rgb[r0 + p] + rgb[r0 + p + 3] + rgb[r1 + p] + rgb[r1 + p + 3] + 2) >> 2;
      }
    }
  }
  return { rgb: out, width: w, height: h };
}

/** For each output cell: the first input sample it covers and the weights of the samples it covers. */
function areaWeights(sizeIn, sizeOut) {
  const step = sizeIn / sizeOut;
  const cells = [];
  for (let k = 0; k < sizeOut; k++) {
    const e0 = k * step, e1 = (k + 1) * step;
    const first = Math.floor(e0), last = Math.min(sizeIn - 1, Math.ceil(e1) - 1);
    const weights = [];
    for (let i = first; i <= last; i++) {
      weights.push(Math.max(0, Math.min(i + 1, e1) - Math.max(i, e0)) / step);
    }
    cells.push({ first, weights });
  }
  return cells;
}

/** 64 x 64 x 3 area-averaged colour grid (row-major, channel last) of RGB pixels. */
export function colourGrid(rgb, width, height) {
  let img = { rgb, width, height };
  while (Math.min(img.width, img.height) >= 4 * GRID) img = halve(img.rgb, img.width, img.height);
  const { width: w, height: h } = img;
  const rowCells = areaWeights(h, GRID), colCells = areaWeights(w, GRID);
  const rows = new Float64Array(GRID * w * 3);
  for (let k = 0; k < GRID; k++) {
    const { first, weights } = rowCells[k];
    const dst = k * w * 3;
    for (let t = 0; t < weights.length; t++) {
      const wt = weights[t], src = (first + t) * w * 3;
      if (wt === 0) continue;
      for (let i = 0; i < w * 3; i++) rows[dst + i] += wt * img.rgb[src + i];
    }
  }
  const grid = new Float64Array(GRID * GRID * 3);
  for (let r = 0; r < GRID; r++) {
    for (let k = 0; k < GRID; k++) {
      const { first, weights } = colCells[k];
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let t = 0; t < weights.length; t++) s += weights[t] * rows[(r * w + first + t) * 3 + c];
        grid[(r * GRID + k) * 3 + c] = s;
      }
    }
  }
  return grid;
}

function dctMatrix(n, keep) {
  const m = [];
  for (let k = 0; k < keep; k++) {
    const row = new Float64Array(n);
    for (let x = 0; x < n; x++) {
      row[x] = Math.cos((Math.PI * (2 * x + 1) * k) / (2 * n)) * Math.sqrt(2 / n) / (k === 0 ? Math.SQRT2 : 1);
    }
    m.push(row);
  }
  return m;
}

const DCT32 = dctMatrix(32, 8);

/** The 64-bit pHash (16 hex digits) of a 64 x 64 x 3 colour grid. */
export function phashOfGrid(grid) {
  const g32 = new Float64Array(32 * 32);
  for (let y = 0; y < 32; y++) {
    for (let x = 0; x < 32; x++) {
      let s = 0;
      for (const [dy, dx] of [[0, 0], [0, 1], [1, 0], [1, 1]]) {
        const p = ((2 * y + dy) * GRID + 2 * x + dx) * 3;
        s += LUMA[0] * grid[p] + LUMA[1] * grid[p + 1] + LUMA[2] * grid[p + 2];
      }
      g32[y * 32 + x] = s / 4;
    }
  }
  const tmp = new Float64Array(8 * 32); // DCT @ g32
  for (let u = 0; u < 8; u++) {
    for (let x = 0; x < 32; x++) {
      let s = 0;
      for (let y = 0; y < 32; y++) s += DCT32[u][y] * g32[y * 32 + x];
      tmp[u * 32 + x] = s;
    }
  }
  const coef = new Float64Array(64); // (DCT @ g32) @ DCT.T
  for (let u = 0; u < 8; u++) {
    for (let v = 0; v < 8; v++) {
      let s = 0;
      for (let x = 0; x < 32; x++) s += tmp[u * 32 + x] * DCT32[v][x];
      coef[u * 8 + v] = s;
    }
  }
  const sorted = Array.from(coef).sort((a, b) => a - b);
  const median = (sorted[31] + sorted[32]) / 2;
  let hex = "";
  for (let nibble = 0; nibble < 16; nibble++) {
    let d = 0;
    for (let b = 0; b < 4; b++) d = (d << 1) | (coef[nibble * 4 + b] > median ? 1 : 0);
    hex += d.toString(16);
  }
  return hex;
}

/** The pHash of upright straight-alpha RGBA pixels at full size (``reduce`` false: already reduced). */
export function phashOfRGBA(rgba, width, height, { reduce = true } = {}) {
  let img = { rgb: flattenAlpha(rgba, width, height), width, height };
  const factor = reduce ? reduction(Math.min(width, height)) : 1;
  if (factor > 1) img = boxReduce(img.rgb, width, height, factor);
  return phashOfGrid(colourGrid(img.rgb, img.width, img.height));
}

/** Bits that differ between two 16-hex-digit hashes. */
export function distanceBits(a, b) {
  let bits = 0;
  for (let i = 0; i < 16; i++) {
    let x = parseInt(a[i], 16) ^ parseInt(b[i], 16);
    while (x) { bits += x & 1; x >>= 1; }
  }
  return bits;
}
