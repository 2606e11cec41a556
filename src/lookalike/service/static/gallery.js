// The gallery: the tenant's images a page at a time, each with its renditions and, on demand, its
// near-duplicates.

import { api, apiKey, el, fileUrl, formatBytes, setupKeyForm, showImage } from "./lookalike-pages.js";

const gallery = document.getElementById("gallery");
const status = document.getElementById("gallery-status");
const more = document.getElementById("more");
const PAGE = 48;
let next = null;

setupKeyForm(() => {
  gallery.replaceChildren();
  next = null;
  more.hidden = true;
  if (apiKey()) loadPage("");
  else status.textContent = "";
});
more.addEventListener("click", () => loadPage(next));

async function loadPage(after) {
  status.textContent = "Loading…";
  try {
    const page = await api(`/v1/images?limit=${PAGE}&after=${encodeURIComponent(after)}`);
    gallery.append(...page.images.map(card));
    next = page.next;
    more.hidden = !next;
    const n = gallery.children.length;
    status.textContent = n ? `${n} image${n === 1 ? "" : "s"}${next ? " so far" : ""}.` : "No images stored yet.";
  } catch (err) {
    status.textContent = `Could not load the images: ${err.message}`;
  }
}

function card(image) {
  const preview = el("img", { alt: `Image ${image.id}` });
  showImage(preview, image.files[0].url);
  const rows = image.files.map((f) => {
    const show = el("button", {
      type: "button", class: "secondary", text: f.rendition, "aria-label": `Show rendition ${f.rendition} of ${image.id}`,
    });
    show.addEventListener("click", () => showImage(preview, f.url));
    return el("tr", {}, el("td", {}, show), el("td", { text: `${f.width}×${f.height}` }),
      el("td", { text: f.mime.replace("image/", "") }), el("td", { text: formatBytes(f.bytes) }));
  });
  const table = el("table", { class: "renditions" },
    el("caption", { class: "visually-hidden", text: `Renditions of ${image.id}` }),
    el("thead", {}, el("tr", {}, ...["Rendition", "Size", "Type", "Bytes"].map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, ...rows));
  const list = el("ul", { class: "similar", id: `similar-${image.id}`, hidden: true });
  const toggle = el("button", {
    type: "button", class: "secondary", text: "Show near-duplicates",
    "aria-expanded": "false", "aria-controls": list.id,
  });
  toggle.addEventListener("click", () => toggleSimilar(image.id, toggle, list));
  return el("li", { class: "image", "data-id": image.id }, preview, el("h2", { text: image.id }), table, toggle, list);
}

async function toggleSimilar(id, toggle, list) {
  const open = toggle.getAttribute("aria-expanded") === "true";
  toggle.setAttribute("aria-expanded", String(!open));
  toggle.textContent = open ? "Show near-duplicates" : "Hide near-duplicates";
  list.hidden = open;
  if (open || list.dataset.loaded) return;
  list.replaceChildren(el("li", { text: "Loading…" }));
  try {
    // a pair a person marked "not a duplicate" comes back as different: the list shows the others
    const matches = (await api(`/v1/images/${encodeURIComponent(id)}/similar`)).filter((m) => m.verdict !== "different");
    list.dataset.loaded = "1";
    if (!matches.length) {
      list.replaceChildren(el("li", { text: "No near-duplicates." }));
      return;
    }
    list.replaceChildren(...matches.map((m) => {
      const img = el("img", { alt: `Image ${m.id}` });
      showImage(img, fileUrl(m.id, m.rendition));
      return el("li", { "data-id": m.id }, img,
        el("span", { text: `${m.id}: ${m.verdict.replace("_", " ")}, score ${m.score.toFixed(2)}` }));
    }));
  } catch (err) {
    list.replaceChildren(el("li", { text: `Could not load: ${err.message}` }));
  }
}
