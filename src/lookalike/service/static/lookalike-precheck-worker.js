// The pre-check's Web Worker (a module worker): for each file posted to it, the SHA-256 of its bytes,
// lookalike's 64-bit pHash of the picture, and a small thumbnail for display. Everything heavy happens
// here, off the page's main thread.
//
// Message in:  {id, file}
// Messages out: {id, type: "progress", stage: "reading" | "decoding", done, total}
//               {id, type: "result", sha256, phash, width, height, thumbnail, decodeError}
//               {id, type: "error", message}

import { phashOfRGBA } from "./lookalike-phash.js";

/** Read at most this many pixels at full size; larger pictures go through a resized intermediate. */
const FULL_SIZE_PIXELS = 48_000_000;
const THUMBNAIL_SIDE = 160;

self.onmessage = async (event) => {
  const { id, file } = event.data;
  try {
    const sha256 = await digest(file, (done) => post({ id, type: "progress", stage: "reading", done, total: file.size }));
    post({ id, type: "progress", stage: "decoding", done: 0, total: 1 });
    const picture = await perceptual(file);
    post({ id, type: "result", sha256, ...picture });
  } catch (err) {
    post({ id, type: "error", message: String(err && err.message ? err.message : err) });
  }
};

function post(message) {
  self.postMessage(message);
}

/**
 * SHA-256 of a Blob. The bytes are streamed in (the browser's chunks) into one buffer, reporting
 * progress as they come; Web Crypto has no incremental digest, so the digest itself is one call, here
 * in the worker where it cannot stall the page.
 */
async function digest(file, progress) {
  const buffer = new Uint8Array(file.size);
  const reader = file.stream().getReader();
  let done = 0;
  let lastReport = 0;
  for (;;) {
    const { value, done: finished } = await reader.read();
    if (finished) break;
    buffer.set(value, done);
    done += value.length;
    if (done - lastReport >= 4 * 1024 * 1024) {
      progress(done);
      lastReport = done;
    }
  }
  progress(done);
  const hash = await crypto.subtle.digest("SHA-256", buffer);
  return Array.from(new Uint8Array(hash), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The pHash, upright size and a thumbnail; a picture the browser cannot decode gets no pHash. */
async function perceptual(file) {
  let bitmap;
  try {
    // the server applies EXIF orientation and ignores embedded colour profiles: so do we
    bitmap = await createImageBitmap(file, {
      imageOrientation: "from-image", colorSpaceConversion: "none", premultiplyAlpha: "none",
    });
  } catch (err) {
    return { phash: null, width: null, height: null, thumbnail: null, decodeError: "the browser cannot decode this file" };
  }
  const { width, height } = bitmap;
  let source = bitmap;
  let sw = width, sh = height;
  if (width * height > FULL_SIZE_PIXELS) {
    // too big to read whole: a high-quality resized intermediate, still at least 512 px on the short side
    const f = Math.max(1, Math.floor(Math.min(width, height) / 512));
    sw = Math.ceil(width / f);
    sh = Math.ceil(height / f);
    source = await createImageBitmap(bitmap, { resizeWidth: sw, resizeHeight: sh, resizeQuality: "high" });
  }
  const canvas = new OffscreenCanvas(sw, sh);
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(source, 0, 0);
  const pixels = ctx.getImageData(0, 0, sw, sh).data;
  const phash = phashOfRGBA(pixels, sw, sh);
  const thumbnail = await makeThumbnail(bitmap);
  if (source !== bitmap) source.close();
  bitmap.close();
  return { phash, width, height, thumbnail, decodeError: null };
}

async function makeThumbnail(bitmap) {
  const scale = Math.min(1, THUMBNAIL_SIDE / Math.max(bitmap.width, bitmap.height));
  const tw = Math.max(1, Math.round(bitmap.width * scale));
  const th = Math.max(1, Math.round(bitmap.height * scale));
  const canvas = new OffscreenCanvas(tw, th);
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, tw, th);
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(bitmap, 0, 0, tw, th);
  return canvas.convertToBlob({ type: "image/jpeg", quality: 0.8 });
}
