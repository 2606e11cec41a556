// lookalike-precheck: "have I already got this image?" answered in the browser before uploading.
//
//   import { Precheck } from "/static/lookalike-precheck.js";
//   const pc = new Precheck({ apiKey });
//   const results = await pc.precheck(fileList, { onResult: (r) => show(r) });
//   for (const r of results.filter((r) => r.status === "new")) await pc.upload(r.file, { onProgress });
//
// Each file is hashed in a Web Worker (SHA-256 of the bytes with Web Crypto, and lookalike's 64-bit
// pHash of the picture from a canvas decode with the server's orientation and alpha policy), then
// the hashes go to `POST /v1/check/hash` in batches ({"items": [...]}, one request for many files).
// Per file the answer is one of:
//   "stored"            the server holds these exact bytes (match.id, match.thumbnailUrl): never send them
//   "likely_duplicate"  a stored picture's pHash is close (match.score, match.verdict): a person decides
//   "new"               nothing alike is stored: upload it
//   "too_large" | "error"
// thumbnailUrl needs the same `Authorization: Bearer` header: `fetchImage(url, apiKey)` gives an object URL.

const WORKER_URL = new URL("./lookalike-precheck-worker.js", import.meta.url);

export const STATUS = Object.freeze({
  STORED: "stored", LIKELY_DUPLICATE: "likely_duplicate", NEW: "new", TOO_LARGE: "too_large", ERROR: "error",
});

/** An answer from the service that was not a success: `status` (HTTP) and the server's `code`/`message`. */
export class ServiceError extends Error {
  constructor(status, code, message, details = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

async function serviceError(response) {
  let code = "http_" + response.status, message = response.statusText || "request failed", details = {};
  try {
    const body = await response.json();
    if (body && body.error) ({ code, message, ...details } = body.error);
  } catch {
    // not JSON: keep the status line
  }
  return new ServiceError(response.status, code, message, details);
}

/** Which of the three answers a `/v1/check/hash` result means, and the match that decides it. */
export function classify(check) {
  const best = check.matches[0] || null;
  if (!check.upload_needed) return { status: STATUS.STORED, match: best };
  if (best && (best.verdict === "near_duplicate" || best.verdict === "similar")) {
    return { status: STATUS.LIKELY_DUPLICATE, match: best };
  }
  return { status: STATUS.NEW, match: null };
}

export class Precheck {
  /**
   * apiKey: the tenant's key. baseUrl: the service ("" for the page's own origin).
   * workers: hashing workers (default: up to 2). batchSize: files per `/v1/check/hash` request.
   * maxBytes: files over it are reported "too_large" and not hashed (the service's upload limit).
   */
  constructor({ apiKey, baseUrl = "", workers, batchSize = 50, maxBytes = 50 * 1024 * 1024 } = {}) {
    if (!apiKey) throw new Error("an API key is needed");
    this.apiKey = apiKey;
    this.baseUrl = baseUrl.replace(/\/$/, "");
    this.batchSize = batchSize;
    this.maxBytes = maxBytes;
    const n = workers || Math.max(1, Math.min(2, navigator.hardwareConcurrency || 1));
    this.pool = Array.from({ length: n }, () => ({ worker: null, busy: false }));
    this.waiting = [];
    this.nextId = 1;
  }

  /** Stop the workers. */
  close() {
    for (const slot of this.pool) if (slot.worker) slot.worker.terminate();
  }

  /** SHA-256 (hex), pHash (16 hex digits, null when the browser cannot decode the file) and a thumbnail Blob. */
  hashFile(file, onProgress = () => {}) {
    return new Promise((resolve, reject) => {
      this.waiting.push({ file, onProgress, resolve, reject });
      this._dispatch();
    });
  }

  _dispatch() {
    for (const slot of this.pool) {
      if (slot.busy || this.waiting.length === 0) continue;
      const job = this.waiting.shift();
      slot.busy = true;
      if (!slot.worker) slot.worker = new Worker(WORKER_URL, { type: "module" });
      const id = this.nextId++;
      const finish = () => {
        slot.worker.onmessage = null;
        slot.worker.onerror = null;
        slot.busy = false;
        this._dispatch();
      };
      slot.worker.onmessage = ({ data }) => {
        if (data.id !== id) return;
        if (data.type === "progress") {
          job.onProgress(data);
        } else if (data.type === "result") {
          finish();
          job.resolve(data);
        } else {
          finish();
          job.reject(new Error(data.message));
        }
      };
      slot.worker.onerror = (event) => {
        event.preventDefault();
        slot.worker.terminate();
        slot.worker = null;
        finish();
        job.reject(new Error(event.message || "the hashing worker failed"));
      };
      slot.worker.postMessage({ id, file: job.file });
    }
  }

  /** One `POST /v1/check/hash` for many files: [{sha256, phash}] -> the service's answers, in order. */
  async checkHashes(hashes) {
    const items = hashes.map(({ sha256, phash }) => (phash ? { sha256, phash } : { sha256 }));
    const response = await fetch(this.baseUrl + "/v1/check/hash", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: "Bearer " + this.apiKey },
      body: JSON.stringify({ items }),
    });
    if (!response.ok) throw await serviceError(response);
    return (await response.json()).results;
  }

  /**
   * Hash every file and ask the service about them in batches. `onHashed(result)` is called as each
   * file is hashed, `onResult(result)` as its answer arrives, `onProgress(file, progress)` while
   * hashing. Resolves to one result per file, in order: {file, status, sha256, phash, thumbnail,
   * width, height, match, matches, error}.
   */
  async precheck(files, { onHashed = () => {}, onResult = () => {}, onProgress = () => {} } = {}) {
    const results = Array.from(files, (file) => ({ file, status: null, match: null, matches: [], error: null }));
    let pending = [];
    let outstanding = results.length;
    const checks = [];
    const settle = (r) => {
      onResult(r);
    };
    const flush = () => {
      if (pending.length === 0) return;
      const batch = pending;
      pending = [];
      checks.push(
        this.checkHashes(batch).then(
          (answers) => answers.forEach((check, i) => {
            const r = batch[i];
            const { status, match } = classify(check);
            Object.assign(r, { status, match: match && this._withThumbnail(match), matches: check.matches, verdict: check.verdict });
            settle(r);
          }),
          (err) => batch.forEach((r) => {
            Object.assign(r, { status: STATUS.ERROR, error: err });
            settle(r);
          }),
        ),
      );
    };
    const hashed = results.map(async (r) => {
      if (r.file.size > this.maxBytes) {
        r.status = STATUS.TOO_LARGE;
        r.error = new Error(`over the upload limit of ${this.maxBytes.toLocaleString("en")} bytes`);
        settle(r);
      } else {
        try {
          Object.assign(r, await this.hashFile(r.file, (p) => onProgress(r.file, p)));
          onHashed(r);
          pending.push(r);
        } catch (err) {
          Object.assign(r, { status: STATUS.ERROR, error: err });
          settle(r);
        }
      }
      outstanding -= 1;
      if (pending.length >= this.batchSize || outstanding === 0) flush();
    });
    await Promise.all(hashed);
    await Promise.all(checks);
    return results;
  }

  _withThumbnail(match) {
    const rendition = match.rendition ? `?rendition=${encodeURIComponent(match.rendition)}` : "";
    return { ...match, thumbnailUrl: `${this.baseUrl}/v1/images/${encodeURIComponent(match.id)}/file${rendition}` };
  }

  /**
   * Upload one file (`POST /v1/images`). onDuplicate: "reject" (default), "review" or "store".
   * onProgress(sentBytes, totalBytes). Resolves to {status: "stored", image} or, when the service finds
   * it is a copy after all (409), {status: "duplicate", match: {id, verdict, score, evidence}}.
   * Rejects with a ServiceError otherwise.
   */
  upload(file, { id, onDuplicate = "reject", onProgress = () => {} } = {}) {
    const form = new FormData();
    form.append("file", file, file.name);
    form.append("on_duplicate", onDuplicate);
    if (id) form.append("id", id);
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", this.baseUrl + "/v1/images");
      xhr.setRequestHeader("Authorization", "Bearer " + this.apiKey);
      xhr.responseType = "json";
      xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
      xhr.onerror = () => reject(new ServiceError(0, "network", "the upload did not reach the service"));
      xhr.onload = () => {
        const body = xhr.response || {};
        if (xhr.status === 201) {
          resolve({ status: "stored", image: body.image, verdict: body.verdict, matches: body.matches });
        } else if (xhr.status === 409 && body.error) {
          const { code, message, ...match } = body.error;
          resolve({ status: "duplicate", message, match: this._withThumbnail(match) });
        } else {
          const e = body.error || {};
          reject(new ServiceError(xhr.status, e.code || "http_" + xhr.status, e.message || "upload failed"));
        }
      };
      xhr.send(form);
    });
  }
}

/** An object URL for an image the service serves behind the API key (revoke it when done). */
export async function fetchImage(url, apiKey) {
  const response = await fetch(url, { headers: { Authorization: "Bearer " + apiKey } });
  if (!response.ok) throw await serviceError(response);
  return URL.createObjectURL(await response.blob());
}
