// What the three pages share: the API key (entered on the page, kept in sessionStorage, sent as
// `Authorization: Bearer`), JSON calls to the service, and images fetched behind the key.

import { ServiceError, fetchImage } from "./lookalike-precheck.js";

const KEY = "lookalike.apiKey";

export function apiKey() {
  return sessionStorage.getItem(KEY);
}

/** A JSON call to the service with the key; throws ServiceError with the server's message. */
export async function api(path, { method = "GET", body } = {}) {
  const headers = { Authorization: "Bearer " + apiKey() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 204) return null;
  let json = null;
  try {
    json = await response.json();
  } catch {
    // an empty or non-JSON body: the status says it
  }
  if (!response.ok) {
    const e = (json && json.error) || {};
    throw new ServiceError(response.status, e.code || "http_" + response.status, e.message || response.statusText);
  }
  return json;
}

const imageCache = new Map();
let active = 0;
const queue = [];

/** Show the service image at `url` in `img` (fetched with the key, at most four at a time). */
export function showImage(img, url) {
  img.dataset.src = url;
  const run = async () => {
    active += 1;
    try {
      if (!imageCache.has(url)) imageCache.set(url, fetchImage(url, apiKey()));
      img.src = await imageCache.get(url);
    } catch (err) {
      imageCache.delete(url);
      img.alt = (img.alt ? img.alt + ": " : "") + "image unavailable";
    } finally {
      active -= 1;
      if (queue.length) queue.shift()();
    }
  };
  if (active < 4) run();
  else queue.push(run);
}

export function fileUrl(id, rendition) {
  const r = rendition ? `?rendition=${encodeURIComponent(rendition)}` : "";
  return `/v1/images/${encodeURIComponent(id)}/file${r}`;
}

/** An element with text and attributes (no innerHTML anywhere: names come from users). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("data-") || k.startsWith("aria-") || k === "role" || k === "for") node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) if (c) node.append(c);
  return node;
}

export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/**
 * Wire the header's key form. `onKey()` runs once a valid key is set (now, when sessionStorage has
 * one, and after the person enters one). The key is checked with one cheap call before it is kept.
 */
export function setupKeyForm(onKey) {
  const form = document.getElementById("key-form");
  const input = document.getElementById("api-key");
  const status = document.getElementById("key-status");
  const forget = document.getElementById("forget-key");
  const show = () => {
    const key = apiKey();
    status.classList.remove("bad");
    status.textContent = key ? `Using key ${key.slice(0, 6)}…` : "Enter your API key to start.";
    forget.hidden = !key;
    // with a key set, the form shrinks to its status and "Forget key" (forget it to enter another)
    for (const node of form.querySelectorAll("label, #api-key, button[type=submit]")) node.hidden = Boolean(key);
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    const previous = apiKey();
    sessionStorage.setItem(KEY, key);
    try {
      await api("/v1/images?limit=1");
    } catch (err) {
      if (previous) sessionStorage.setItem(KEY, previous);
      else sessionStorage.removeItem(KEY);
      status.textContent = err.status === 401 ? "That key is not valid." : `The service did not answer: ${err.message}`;
      status.classList.add("bad");
      input.focus();
      return;
    }
    input.value = "";
    show();
    onKey();
    const first = document.querySelector("main input:not([disabled]), main button:not([disabled])");
    (first || forget).focus();
  });
  forget.addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    show();
    input.focus();
    onKey();
  });
  show();
  if (apiKey()) onKey();
  else input.focus();
}
