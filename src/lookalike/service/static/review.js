// The review page: the tenant's potential-duplicate pairs side by side; a decision is stored through
// the API (and honoured by later checks); "Delete this copy" deletes one image of the pair.

import { api, apiKey, el, fileUrl, setupKeyForm, showImage } from "./lookalike-pages.js";

const pairsBox = document.getElementById("pairs");
const status = document.getElementById("review-status");

const DECISION_TEXT = { duplicate: "a duplicate", not_duplicate: "not a duplicate" };

setupKeyForm(load);

async function load() {
  pairsBox.replaceChildren();
  if (!apiKey()) {
    status.textContent = "";
    return;
  }
  status.textContent = "Loading…";
  try {
    const pairs = [];
    let after = null;
    do {  // every page: the list is short enough to show at once, and a person works through it
      const page = await api(`/v1/review?limit=1000${after ? `&after=${encodeURIComponent(after)}` : ""}`);
      pairs.push(...page.pairs);
      after = page.next;
    } while (after);
    pairsBox.replaceChildren(...pairs.map(pairCard));
    status.textContent = pairs.length
      ? `${pairs.length} pair${pairs.length === 1 ? "" : "s"} to review.`
      : "Nothing to review.";
  } catch (err) {
    status.textContent = `Could not load the review list: ${err.message}`;
  }
}

function side(pair, which) {
  const id = pair[which];
  const img = el("img", { alt: `Image ${id}` });
  showImage(img, fileUrl(id));
  const remove = el("button", {
    type: "button", class: "danger", text: "Delete this copy", "aria-label": `Delete this copy: ${id}`,
  });
  remove.addEventListener("click", () => deleteImage(pair, id));
  return el("figure", {}, img, el("figcaption", {}, el("span", { text: id }), remove));
}

function pairCard(pair) {
  const title = `pair-${pair.pair_id}-title`;
  const card = el("article", { class: "pair", "data-pair": pair.pair_id, "aria-labelledby": title });
  const decide = el("div", { class: "actions" });
  for (const [decision, label] of [["duplicate", "Duplicate"], ["not_duplicate", "Not a duplicate"]]) {
    const button = el("button", {
      type: "button", text: label, class: decision === "duplicate" ? "" : "secondary", "data-decision": decision,
    });
    button.addEventListener("click", () => decidePair(pair, decision, card));
    decide.append(button);
  }
  card.append(
    el("h2", { id: title, text: `${pair.a} and ${pair.b}` }),
    el("p", { class: "score", text: `Score ${pair.score.toFixed(2)} · ${pair.verdict.replace("_", " ")}` }),
    el("p", { class: "evidence", text: pair.evidence }),
    el("div", { class: "sides" }, side(pair, "a"), side(pair, "b")),
    decide,
  );
  return card;
}

/** Drop a card from the list and move the focus to the next card's first button (or the status). */
function removeCard(card) {
  const next = card.nextElementSibling || card.previousElementSibling;
  card.remove();
  const target = next && next.querySelector("button[data-decision]");
  if (target) target.focus();
  const left = pairsBox.children.length;
  return left ? `${left} pair${left === 1 ? "" : "s"} left.` : "Nothing left to review.";
}

async function decidePair(pair, decision, card) {
  card.querySelectorAll("button").forEach((b) => (b.disabled = true));
  try {
    await api(`/v1/review/${pair.pair_id}`, { method: "POST", body: { decision } });
    status.textContent = `Marked ${pair.a} and ${pair.b} as ${DECISION_TEXT[decision]}. ${removeCard(card)}`;
  } catch (err) {
    card.querySelectorAll("button").forEach((b) => (b.disabled = false));
    status.textContent = `Could not record the decision: ${err.message}`;
  }
}

async function deleteImage(pair, id) {
  if (!confirm(`Delete image ${id} and all its files?`)) return;
  try {
    await api(`/v1/images/${encodeURIComponent(id)}`, { method: "DELETE" });
  } catch (err) {
    status.textContent = `Could not delete ${id}: ${err.message}`;
    return;
  }
  // every pair with that image is gone from the service's list too
  let left = "";
  for (const card of [...pairsBox.querySelectorAll(".pair")]) {
    if (card.querySelector(`img[alt="Image ${CSS.escape(id)}"]`)) left = removeCard(card);
  }
  status.textContent = `Deleted ${id}. ${left}`;
}
