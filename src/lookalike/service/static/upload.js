// The upload page: pick or drop pictures, see each one's pre-check, upload only the new ones.

import { Precheck, STATUS } from "./lookalike-precheck.js";
import { apiKey, el, formatBytes, setupKeyForm, showImage } from "./lookalike-pages.js";

const input = document.getElementById("file-input");
const zone = document.getElementById("drop-zone");
const list = document.getElementById("file-list");
const summary = document.getElementById("summary");
const uploadButton = document.getElementById("upload-new");
const clearButton = document.getElementById("clear");

let precheck = null;
const rows = []; // {result, li, status, progress, match, anyway}
let checking = 0;
let uploading = false;

setupKeyForm(() => {
  if (precheck) precheck.close();
  precheck = apiKey() ? new Precheck({ apiKey: apiKey() }) : null;
  input.disabled = !precheck;
  refresh();
});

input.addEventListener("change", () => {
  select(input.files);
  input.value = "";
});
zone.addEventListener("dragover", (event) => {
  event.preventDefault();
  zone.classList.add("dragging");
});
zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
zone.addEventListener("drop", (event) => {
  event.preventDefault();
  zone.classList.remove("dragging");
  if (precheck) select(event.dataTransfer.files);
  else summary.textContent = "Enter your API key first.";
});
uploadButton.addEventListener("click", uploadAll);
clearButton.addEventListener("click", () => {
  rows.length = 0;
  list.replaceChildren();
  refresh();
});

const verdictText = (m) => `${m.verdict.replace("_", " ")}, score ${m.score.toFixed(2)}`;
const STATUS_TEXT = {
  hashing: () => "Checking in the browser…",
  checking: () => "Asking the service…",
  [STATUS.STORED]: (row) => `Already stored as ${row.result.match.id}: not uploaded`,
  [STATUS.LIKELY_DUPLICATE]: (row) => `Likely duplicate of ${row.result.match.id} (${verdictText(row.result.match)})`,
  [STATUS.NEW]: () => "New: ready to upload",
  [STATUS.TOO_LARGE]: (row) => `Too large: ${row.result.error.message}`,
  [STATUS.ERROR]: (row) => `Could not check: ${row.result.error.message}`,
  uploading: () => "Uploading…",
  uploaded: (row) => `Uploaded as ${row.uploaded.id}`,
  duplicate: (row) => `Not stored, the service found a copy: ${row.serverMatch.id} (${verdictText(row.serverMatch)})`,
  upload_failed: (row) => `Upload failed: ${row.error.message}`,
};

function select(files) {
  const batch = Array.from(files).filter((f) => f.size > 0 || f.name);
  if (!batch.length || !precheck) return;
  const added = batch.map((file) => {
    const row = addRow(file);
    rows.push(row);
    return row;
  });
  checking += 1;
  refresh();
  precheck
    .precheck(batch, {
      onProgress: (file, p) => {
        const row = added[batch.indexOf(file)];
        if (p.stage === "reading" && p.total) row.progress.value = (0.8 * p.done) / p.total;
      },
      onHashed: (r) => {
        const row = added[batch.indexOf(r.file)];
        row.progress.value = 0.9;
        if (r.thumbnail) row.thumb.src = URL.createObjectURL(r.thumbnail);
        setStatus(row, "checking");
      },
      onResult: (r) => {
        const row = added[batch.indexOf(r.file)];
        row.result = r;
        row.progress.value = 1;
        setStatus(row, r.status);
        if (r.match) showMatch(row, r.match, r.status === STATUS.STORED ? "Stored copy" : "Looks like");
        if (r.status === STATUS.LIKELY_DUPLICATE) row.anywayLabel.hidden = false;
        refresh();
      },
    })
    .catch((err) => {
      summary.textContent = `The check failed: ${err.message}`;
    })
    .finally(() => {
      checking -= 1;
      refresh();
    });
}

function addRow(file) {
  const thumb = el("img", { class: "thumb", alt: "" });
  const status = el("p", { class: "status", text: STATUS_TEXT.hashing() });
  const progress = el("progress", { max: 1, value: 0, "aria-label": `${file.name} progress` });
  const match = el("div", { class: "match" });
  const anyway = el("input", { type: "checkbox", class: "upload-anyway" });
  const anywayLabel = el("label", { hidden: true }, anyway, " Upload anyway (goes to the review list)");
  anyway.addEventListener("change", refresh);
  const li = el(
    "li",
    { class: "file", "data-name": file.name, "data-status": "hashing" },
    thumb,
    el("div", { class: "info" }, el("span", { class: "name", text: file.name }), " ",
      el("span", { class: "muted", text: formatBytes(file.size) }), status, progress, match),
    anywayLabel,
  );
  list.append(li);
  return { file, li, thumb, status, progress, match, anyway, anywayLabel, result: null, state: "hashing" };
}

function setStatus(row, state) {
  row.state = state;
  row.li.dataset.status = state;
  row.status.textContent = STATUS_TEXT[state](row);
}

function showMatch(row, match, label) {
  const img = el("img", { alt: `${label} ${match.id}` });
  showImage(img, match.thumbnailUrl);
  row.match.replaceChildren(img, el("span", { text: `${label}: ${match.id}` }));
}

function toUpload() {
  return rows.filter(
    (r) => r.state === STATUS.NEW || (r.state === STATUS.LIKELY_DUPLICATE && r.anyway.checked),
  );
}

function refresh() {
  const count = (s) => rows.filter((r) => r.state === s).length;
  const pending = toUpload().length;
  const forReview = toUpload().filter((r) => r.state === STATUS.LIKELY_DUPLICATE).length;
  uploadButton.disabled = uploading || checking > 0 || pending === 0;
  uploadButton.textContent = !pending
    ? "Upload new files"
    : forReview
      ? `Upload ${pending} file${pending === 1 ? "" : "s"} (${forReview} for review)`
      : `Upload ${pending} new file${pending === 1 ? "" : "s"}`;
  clearButton.disabled = uploading || checking > 0 || rows.length === 0;
  if (!rows.length) {
    summary.textContent = precheck ? "No files chosen yet." : "";
    return;
  }
  const parts = [
    [count(STATUS.STORED), "already stored"],
    [count(STATUS.LIKELY_DUPLICATE), "likely duplicates"],
    [count(STATUS.NEW), "new"],
    [count("uploaded"), "uploaded"],
    [count("duplicate"), "refused as copies"],
    [count(STATUS.ERROR) + count(STATUS.TOO_LARGE) + count("upload_failed"), "failed"],
  ].filter(([n]) => n > 0);
  const busy = count("hashing") + count("checking");
  summary.textContent =
    `${rows.length} files` + (busy ? `, ${busy} being checked` : "") +
    (parts.length ? ": " + parts.map(([n, what]) => `${n} ${what}`).join(", ") : "");
}

async function uploadAll() {
  const queue = toUpload();
  if (!queue.length) return;
  uploading = true;
  refresh();
  const next = async () => {
    for (let row = queue.shift(); row; row = queue.shift()) await uploadOne(row);
  };
  await Promise.all([next(), next()]); // two at a time
  uploading = false;
  refresh();
}

async function uploadOne(row) {
  const review = row.state === STATUS.LIKELY_DUPLICATE;
  row.anywayLabel.hidden = true;
  setStatus(row, "uploading");
  row.progress.value = 0;
  try {
    const answer = await precheck.upload(row.file, {
      onDuplicate: review ? "review" : "reject",
      onProgress: (sent, total) => {
        row.progress.value = total ? sent / total : 0;
      },
    });
    row.progress.value = 1;
    if (answer.status === "stored") {
      row.uploaded = answer.image;
      setStatus(row, "uploaded");
    } else {
      row.serverMatch = answer.match;
      setStatus(row, "duplicate");
      showMatch(row, answer.match, "Stored copy");
    }
  } catch (err) {
    row.error = err;
    setStatus(row, "upload_failed");
  }
  refresh();
}
