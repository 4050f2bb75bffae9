// frugalsense console: plain DOM, no framework. Every request goes to this server (the page's CSP allows no other).
"use strict";

const $ = (selector) => document.querySelector(selector);
let me = null; // {tenant_id, key_id, role, csrf} once signed in
const PAGE_SIZE = 24;
const state = { personsOffset: 0, clustersOffset: 0, names: new Map() };

// An element with attributes and children; text is always set as text, never parsed as HTML.
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function say(message, isError = false) {
  const status = $("#status");
  status.textContent = message;
  status.classList.toggle("error", isError);
}

async function api(method, path, body) {
  const options = { method, headers: {}, credentials: "same-origin" };
  if (method !== "GET" && me) options.headers["X-CSRF-Token"] = me.csrf;
  if (body instanceof FormData) options.body = body;
  else if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    if (response.status === 401 && path !== "/console/session") showSignIn();
    const error = new Error(data.detail || response.statusText);
    error.status = response.status;
    throw error;
  }
  return data;
}

// Run an async action, report its failure in the status line.
function guarded(action) {
  return async (event) => {
    if (event && event.preventDefault) event.preventDefault();
    try {
      await action(event);
    } catch (error) {
      say(error.message, true);
    }
  };
}

function crop(faceId, name) {
  if (!faceId) return el("span", { class: "noface", text: "no picture" });
  return el("img", { src: `/console/api/crops/${encodeURIComponent(faceId)}`, alt: `Face of ${name}`, width: 72, height: 72 });
}

function money(usd) {
  if (usd === null || usd === undefined) return "n/a";
  if (usd === 0) return "$0";
  if (usd < 0.000001) return "< $0.000001";
  return usd < 1 ? `$${usd.toPrecision(2)}` : `$${usd.toFixed(2)}`;
}

// A table's head and body; a row is its cells, or a <tr> made already.
function table(headers, rows) {
  return [el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, rows.map((row) => (row instanceof Element ? row : el("tr", {}, row.map((cell) => el("td", {}, cell))))))];
}

// -- screens ---------------------------------------------------------------------------------------------

const SCREENS = ["signin", "analyze", "documents", "people", "search", "costs", "keys"];

function show(name) {
  for (const screen of SCREENS) $(`#screen-${screen}`).hidden = screen !== name;
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.getAttribute("href") === `#${name}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function showSignIn() {
  me = null;
  $("#nav").hidden = true;
  $("#who").hidden = true;
  show("signin");
  $("#signin-key").focus();
}

async function route() {
  if (!me) return showSignIn();
  let name = location.hash.slice(1) || "analyze";
  if (!SCREENS.includes(name) || name === "signin") name = "analyze";
  if (name === "keys" && me.role !== "admin") {
    say("Keys are managed by admins; this key is not one.", true);
    name = "analyze";
  }
  show(name);
  try {
    if (name === "analyze" || name === "people") await loadCollections();
    if (name === "people") await Promise.all([loadPersons(), loadClusters()]);
    if (name === "costs") await loadCosts();
    if (name === "keys") await loadKeys();
  } catch (error) {
    say(error.message, true);
  }
}

function signedIn(who) {
  me = who;
  $("#nav").hidden = false;
  $("#who").hidden = false;
  $("#who-text").textContent = `${who.role} key ${who.key_id}`;
  for (const link of document.querySelectorAll("[data-admin]")) link.hidden = who.role !== "admin";
}

// -- analyze ---------------------------------------------------------------------------------------------

// An SVG laid over a page's picture; its view box is the page's size, so shapes take the page's own pixels.
function layer(page) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${page.width} ${page.height}`);
  svg.setAttribute("class", "overlay");
  svg.setAttribute("aria-hidden", "true");
  const add = (tag, attrs, title) => {
    const shape = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs)) shape.setAttribute(k, v);
    if (title) {
      const t = document.createElementNS("http://www.w3.org/2000/svg", "title");
      t.textContent = title;
      shape.append(t);
    }
    svg.append(shape);
    return shape;
  };
  return [svg, add];
}

function overlay(page, names) {
  const [svg, add] = layer(page);
  (page.faces || []).forEach((face, i) => {
    const b = face.box;
    add("rect", { x: b.x, y: b.y, width: b.w, height: b.h, class: "facebox" }, names[i]);
    const label = add("text", { x: b.x, y: Math.max(12, b.y - 4), class: "facename" });
    label.textContent = names[i];
  });
  for (const line of page.text || []) {
    add("polygon", { points: line.quad.map((p) => p.join(",")).join(" "), class: "textline" }, line.text);
  }
  return svg;
}

function boxNames(faces, identified) {
  // Each detected face takes the name of the identified face whose box centre is nearest.
  return faces.map((face) => {
    if (!identified) return "face";
    const cx = face.box.x + face.box.w / 2;
    const cy = face.box.y + face.box.h / 2;
    let best = null;
    let bestDistance = Infinity;
    for (const other of identified.faces) {
      const d = Math.hypot(other.box.x + other.box.w / 2 - cx, other.box.y + other.box.h / 2 - cy);
      if (d < bestDistance) [best, bestDistance] = [other, d];
    }
    if (!best || bestDistance > face.box.w) return "unknown";
    return best.decision === "unknown" ? "unknown" : best.name || best.decision;
  });
}

function receiptTable(receipt) {
  const rows = receipt.stages.map((s) => [s.stage, s.model || "", s.cpu_s.toFixed(4), s.wall_ms.toFixed(1)]);
  rows.push([el("strong", { text: "total" }), "", receipt.cpu_seconds.toFixed(4), receipt.wall_ms.toFixed(1)]);
  const t = el("table", { class: "receipt", "aria-label": "Cost receipt" }, table(["stage", "model", "CPU-s", "wall ms"], rows));
  return [el("h3", { text: `Cost: ${money(receipt.cost_usd)} (${receipt.cpu_seconds.toFixed(3)} CPU-s)` }), t];
}

// Pictures the browser shows as they are; for anything else (PDF, TIFF, video) the server sends JPEGs of the pages.
const SHOWN_AS_IS = ["image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp"];
let shownUrls = [];

function shownUrl(blob) {
  const url = URL.createObjectURL(blob);
  shownUrls.push(url);
  return url;
}

function previewBlob(preview) {
  const bytes = Uint8Array.from(atob(preview.jpeg_base64), (c) => c.charCodeAt(0));
  return new Blob([bytes], { type: "image/jpeg" });
}

// A page's picture (the server's preview, else the file itself when the browser shows it) in a box to draw on.
function pageStage(page, file, heading, name) {
  const shown = page.preview ? previewBlob(page.preview) : file;
  const alt = page.preview ? `${heading} of ${name}` : `The picture ${name}`;
  return shown ? el("div", { class: "stage" }, el("img", { src: shownUrl(shown), alt })) : null;
}

function clearShown(out) {
  out.replaceChildren();
  for (const url of shownUrls) URL.revokeObjectURL(url);
  shownUrls = [];
}

// Several pages or frames: one at a time, with Previous and Next.
function pageTurner(figures, noun) {
  if (figures.length < 2) return null;
  let at = 0;
  const where = el("span", { class: "where", "aria-live": "polite" });
  const previous = el("button", { type: "button", class: "turn-previous", text: `Previous ${noun}` });
  const next = el("button", { type: "button", class: "turn-next", text: `Next ${noun}` });
  const turn = (to) => {
    at = Math.max(0, Math.min(figures.length - 1, to));
    figures.forEach((figure, i) => { figure.hidden = i !== at; });
    where.textContent = ` ${figures[at].dataset.title} (${at + 1} of ${figures.length}) `;
    previous.disabled = at === 0;
    next.disabled = at === figures.length - 1;
  };
  previous.addEventListener("click", () => turn(at - 1));
  next.addEventListener("click", () => turn(at + 1));
  turn(0);
  return el("div", { class: "turner" }, previous, where, next);
}

async function analyze(event) {
  performance.mark("analyze-start");
  const form = $("#analyze-form");
  const file = $("#analyze-file").files[0];
  if (!file) throw new Error("Pick a file first.");
  const body = new FormData();
  body.append("file", file);
  const features = [...form.querySelectorAll("input[name=features]:checked")].map((box) => box.value);
  if (features.length) body.append("features", features.join(","));
  const asIs = SHOWN_AS_IS.includes(file.type);
  if (!asIs && !file.type.startsWith("audio/")) body.append("previews", "true");
  say(`Analyzing ${file.name}…`);
  const result = await api("POST", "/v1/analyze", body);
  let identified = null;
  const collection = $("#analyze-collection").value;
  if (collection && result.pages.some((p) => (p.faces || []).length)) {
    const probe = new FormData();
    probe.append("file", file);
    probe.append("keep", "false");
    identified = await api("POST", `/v1/collections/${encodeURIComponent(collection)}/identify`, probe);
  }
  const out = $("#analyze-result");
  clearShown(out);
  const picture = asIs && result.kind !== "document";
  const figures = result.pages.map((page, index) => {
    const heading = page.page ? `Page ${page.page}` : page.time_s !== undefined && page.time_s !== null ? `Frame at ${page.time_s.toFixed(1)} s` : "Picture";
    // Identification names the faces of the first picture only (the gallery reads the first page or frame).
    const names = boxNames(page.faces || [], index === 0 ? identified : null);
    const figure = el("figure", { class: "page", "data-title": heading });
    const stage = pageStage(page, picture && index === 0 ? file : null, heading, file.name);
    if (stage) {
      stage.append(overlay(page, names));
      figure.append(stage);
    }
    const facts = el("ul", { class: "facts" });
    if (page.faces) facts.append(el("li", { text: `Faces: ${page.faces.length ? names.join(", ") : "none"}` }));
    if (page.labels) facts.append(el("li", { text: `Labels: ${page.labels.slice(0, 5).map((l) => `${l.name} (${(l.score * 100).toFixed(0)}%)`).join(", ") || "none"}` }));
    if (page.moderation) facts.append(el("li", { class: page.moderation.flagged ? "flag" : "", text: `Moderation: ${page.moderation.flagged ? "flagged" : "safe"} (${page.moderation.nsfw.toFixed(2)})` }));
    if (page.text) facts.append(el("li", {}, `Text: ${page.text.length} lines`, page.text.length ? el("pre", { class: "text", text: page.text.map((l) => l.text).join("\n") }) : null));
    figure.append(el("figcaption", { text: heading }), facts);
    return figure;
  });
  const noun = result.kind === "video" ? "frame" : "page";
  const turner = pageTurner(figures, noun);
  if (turner) out.append(turner);
  if (result.previews_omitted) out.append(el("p", { class: "hint", text: `Pictures of the first ${figures.length - result.previews_omitted} ${noun}s only; the other ${result.previews_omitted} are shown as text.` }));
  out.append(...figures);
  if (result.transcript) out.append(el("h3", { text: "Transcript" }), el("p", { class: "transcript", text: result.transcript.text }));
  out.append(...receiptTable(result.receipt));
  performance.mark("analyze-done");
  document.body.dataset.analyzed = String(Date.now());
  say(`Analyzed ${file.name}.`);
}

// -- documents -------------------------------------------------------------------------------------------

const FIELD_NAMES = { vendor: "Vendor", vendor_address: "Vendor address", date: "Date", total: "Total", tax: "Tax" };
const percent = (confidence) => `${Math.round(confidence * 100)}%`;
const plural = (n, noun) => `${n} ${noun}${n === 1 ? "" : "s"}`;

// Each piece of evidence as a box on the page, keyed to its row in the tables beside it.
function evidenceBoxes(add, key, evidence, kind) {
  for (const e of evidence) {
    const b = e.box;
    add("rect", { x: b.x, y: b.y, width: b.w, height: b.h, class: `evidence ${kind}`, "data-key": key }, e.text);
  }
}

// A row whose boxes light up while the pointer is on it or its button has focus; a click keeps them lit.
function keyedRow(key, label, cells) {
  const button = el("button", { type: "button", class: "key", "aria-pressed": "false", text: label, title: "Show on the page" });
  return el("tr", { "data-key": key }, el("th", { scope: "row" }, button), cells.map((cell) => el("td", {}, cell)));
}

function linkBoxes(figure) {
  let chosen = null;
  const light = (key) => {
    for (const node of figure.querySelectorAll("[data-key]")) node.classList.toggle("on", node.dataset.key === key);
  };
  for (const node of figure.querySelectorAll("[data-key]")) {
    const key = node.dataset.key;
    node.addEventListener("mouseenter", () => light(key));
    node.addEventListener("mouseleave", () => light(chosen));
  }
  for (const button of figure.querySelectorAll("button.key")) {
    const key = button.closest("tr").dataset.key;
    button.addEventListener("focus", () => light(key));
    button.addEventListener("blur", () => light(chosen));
    button.addEventListener("click", () => {
      chosen = chosen === key ? null : key;
      for (const other of figure.querySelectorAll("button.key")) other.setAttribute("aria-pressed", String(other === button && chosen === key));
      light(chosen);
    });
  }
}

function sumCheck(checks, items) {
  if (!items.length) return "No line items found.";
  if (checks.sum_matches === undefined) return "The lines could not be checked: no total was found.";
  const tax = checks.tax_added ? ` + tax ${checks.tax_added}` : "";
  if (!checks.sum_matches) return `The lines do not add up to the total: ${checks.lines_sum}${tax} against ${checks.total} (difference ${checks.difference}).`;
  const raised = checks.total_confidence_before !== undefined ? ` This raised the total's confidence from ${percent(checks.total_confidence_before)}.` : "";
  return `The lines add up to the total: ${checks.lines_sum}${tax} = ${checks.total}.${raised}`;
}

function receiptPage(page, add) {
  const rows = Object.entries(page.fields).map(([name, f]) => {
    evidenceBoxes(add, name, f.evidence, "field");
    const row = keyedRow(name, FIELD_NAMES[name] || name, [f.currency ? `${f.value} ${f.currency}` : f.value, percent(f.confidence), f.text]);
    row.dataset.confidence = f.confidence;
    return row;
  });
  const left = page.not_found.map((m) => el("li", { "data-field": m.field, "data-reason": m.reason },
    el("strong", { text: `${FIELD_NAMES[m.field] || m.field}: ` }),
    m.reason === "abstained" ? `not sure (${percent(m.confidence)}, below ${percent(page.threshold)}): left out` : "not found on the page"));
  const items = page.line_items.map((item, i) => {
    evidenceBoxes(add, `item-${i}`, item.evidence, "item");
    return keyedRow(`item-${i}`, String(i + 1), [item.description, item.quantity || "", item.unit_price || "", item.amount]);
  });
  const parts = [el("table", { class: "fields", "aria-label": "Fields read" }, table(["field", "value", "confidence", "as printed"], rows))];
  if (left.length) parts.push(el("h4", { text: "Left out" }), el("ul", { class: "left-out" }, left));
  if (items.length) {
    parts.push(el("h4", { text: "Line items" }), el("table", { class: "items", "aria-label": "Line items" }, table(["#", "description", "quantity", "unit price", "amount"], items)));
  }
  parts.push(el("p", { class: `sum ${page.checks.sum_matches === false ? "flag" : ""}`, "data-sum-matches": page.checks.sum_matches === undefined ? null : String(page.checks.sum_matches), text: sumCheck(page.checks, page.line_items) }));
  return parts;
}

function formPage(page, add) {
  const rows = page.pairs.map((pair, i) => {
    evidenceBoxes(add, `pair-${i}`, pair.question_evidence, "question");
    evidenceBoxes(add, `pair-${i}`, pair.answer_evidence, "answer");
    const row = keyedRow(`pair-${i}`, pair.question, [pair.answers.join(" · "), percent(pair.confidence)]);
    row.dataset.confidence = pair.confidence;
    return row;
  });
  const t = el("table", { class: "pairs", "aria-label": "Questions and answers" }, table(["question", "answer", "confidence"], rows));
  const unsure = page.abstained ? `${plural(page.abstained, "more pair")} left out: not sure (below ${percent(page.threshold)}).` : "No pair left out.";
  return [page.pairs.length ? t : el("p", { text: "No question and answer the model is sure of." }), el("p", { class: "left-out", "data-abstained": page.abstained, text: unsure })];
}

// The call's own cost beside the same pages at Amazon Textract's list price.
function cloudCost(result, form) {
  const price = Number($("#screen-documents").dataset[form ? "priceForms" : "priceFields"]);
  const pages = result.pages.length;
  const cloud = price * pages;
  const ours = result.receipt.cost_usd;
  const api = form ? "Amazon Textract AnalyzeDocument (forms)" : "Amazon Textract AnalyzeExpense";
  const times = ours > 0 ? `, ${Math.round(cloud / ours).toLocaleString("en")} times what this call cost` : "";
  return el("p", { class: "compare", "data-cloud-usd": cloud, text: `${api} at its list price: ${money(cloud)} (${plural(pages, "page")} at ${money(price)})${times}.` });
}

async function readDocument() {
  const file = $("#documents-file").files[0];
  if (!file) throw new Error("Pick a file first.");
  const form = $("#documents-form input[name=kind]:checked").value === "form";
  const body = new FormData();
  body.append("file", file);
  body.append("kind", form ? "form" : "receipt");
  const asIs = SHOWN_AS_IS.includes(file.type);
  if (!asIs) body.append("previews", "true");
  say(`Reading ${file.name}…`);
  const result = await api("POST", "/v1/documents/fields", body);
  const out = $("#documents-result");
  clearShown(out);
  const figures = result.pages.map((page, index) => {
    const heading = page.page ? `Page ${page.page}` : "Picture";
    const figure = el("figure", { class: "page document", "data-title": heading }, el("figcaption", { text: heading }));
    const [svg, add] = layer(page);
    const facts = el("div", { class: "read" }, form ? formPage(page, add) : receiptPage(page, add));
    const stage = pageStage(page, asIs && result.kind !== "document" && index === 0 ? file : null, heading, file.name);
    if (stage) {
      stage.append(svg);
      figure.append(stage);
    }
    figure.append(facts);
    linkBoxes(figure);
    return figure;
  });
  const turner = pageTurner(figures, "page");
  if (turner) out.append(turner);
  if (result.previews_omitted) out.append(el("p", { class: "hint", text: `Pictures of the first ${figures.length - result.previews_omitted} pages only.` }));
  const [cost, stages] = receiptTable(result.receipt);
  out.append(...figures, cost, cloudCost(result, form), stages);
  say(`Read ${file.name}.`);
}

// -- people ----------------------------------------------------------------------------------------------

async function loadCollections() {
  const { collections } = await api("GET", "/v1/collections");
  for (const select of document.querySelectorAll("[data-collections]")) {
    const previous = select.value;
    const keep = [...select.options].filter((o) => o.value === "");
    select.replaceChildren(...keep, ...collections.map((c) => el("option", { value: c.id, text: c.name })));
    if (collections.some((c) => c.id === previous)) select.value = previous;
  }
}

const collectionId = () => $("#people-collection").value;

async function loadPersons() {
  const list = $("#persons");
  list.replaceChildren();
  $("#persons-pager").replaceChildren();
  if (!collectionId()) return;
  const query = new URLSearchParams({ collection_id: collectionId(), name: $("#person-filter").value, limit: PAGE_SIZE, offset: state.personsOffset });
  const page = await api("GET", `/console/api/persons?${query}`);
  for (const person of page.persons) {
    state.names.set(person.id, person.name);
    const upload = el("input", { type: "file", accept: "image/*", id: `enrol-${person.id}` });
    upload.addEventListener("change", guarded(async () => {
      const body = new FormData();
      body.append("file", upload.files[0]);
      await api("POST", `/v1/persons/${encodeURIComponent(person.id)}/faces`, body);
      say(`Added a photo of ${person.name}.`);
      await loadPersons();
    }));
    list.append(el("li", { class: "card", "data-person": person.id },
      crop(person.thumb_face_id, person.name),
      el("strong", { class: "name", text: person.name }),
      el("span", { text: `${person.face_count} face${person.face_count === 1 ? "" : "s"}` }),
      el("label", { for: upload.id, class: "small", text: `Add a photo of ${person.name}` }), upload,
      el("button", { type: "button", onclick: guarded(() => confirmDelete(person)), text: `Delete ${person.name}` })));
  }
  pager($("#persons-pager"), page, (offset) => { state.personsOffset = offset; return loadPersons(); }, "persons");
}

function pager(box, page, go, what) {
  const count = page.persons ? page.persons.length : page.clusters.length;
  const first = page.total ? page.offset + 1 : 0;
  box.replaceChildren(
    el("button", { type: "button", disabled: page.offset === 0, onclick: guarded(() => go(Math.max(0, page.offset - page.limit))), text: "Previous" }),
    el("span", { text: ` ${first}–${page.offset + count} of ${page.total} ${what} ` }),
    el("button", { type: "button", disabled: page.offset + count >= page.total, onclick: guarded(() => go(page.offset + page.limit)), text: "Next" }));
}

async function confirmDelete(person) {
  const what = await api("GET", `/console/api/persons/${encodeURIComponent(person.id)}/erasure`);
  $("#confirm-text").textContent = `This erases ${what.name} for good: ${what.faces} face${what.faces === 1 ? "" : "s"} ` +
    `(${what.enrolled} enrolled) with their embeddings and pictures, ${what.corrections} correction${what.corrections === 1 ? "" : "s"}` +
    `, and their name in ${what.items} indexed item${what.items === 1 ? "" : "s"}.`;
  const dialog = $("#confirm-delete");
  dialog.returnValue = "";
  dialog.showModal();
  const answer = await new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true }));
  if (answer !== "delete") return say("Nothing was deleted.");
  await api("DELETE", `/v1/persons/${encodeURIComponent(person.id)}`);
  say(`${what.name} was deleted.`);
  await loadPersons();
}

async function personByName(name) {
  const query = new URLSearchParams({ collection_id: collectionId(), name, limit: 200, offset: 0 });
  const page = await api("GET", `/console/api/persons?${query}`);
  const found = page.persons.find((p) => p.name.toLowerCase() === name.toLowerCase());
  return found || api("POST", `/v1/collections/${encodeURIComponent(collectionId())}/persons`, { name });
}

async function identify() {
  if (!collectionId()) throw new Error("Create or pick a collection first.");
  const body = new FormData();
  body.append("file", $("#identify-file").files[0]);
  const result = await api("POST", `/v1/collections/${encodeURIComponent(collectionId())}/identify`, body);
  const list = el("ul", { class: "cards", "aria-label": "Faces identified" });
  result.faces.forEach((face, i) => {
    const name = face.decision === "unknown" ? "unknown" : face.name || face.decision;
    const input = el("input", { id: `correct-${i}`, maxlength: 200 });
    const card = el("li", { class: "card", "data-decision": face.decision },
      crop(face.face_id, name), el("strong", { class: "name", text: name }),
      el("span", { text: `similarity ${face.similarity.toFixed(2)}` }));
    if (face.face_id) {
      if (face.decision !== "unknown") {
        card.append(el("button", { type: "button", text: `Not ${name}`, onclick: guarded(async () => {
          await api("POST", `/v1/faces/${encodeURIComponent(face.face_id)}/corrections`, { is_not_person: face.decision });
          say(`Noted: that face is not ${name}.`);
        }) }));
      }
      card.append(el("label", { for: input.id, class: "small", text: "This is (name)" }), input,
        el("button", { type: "button", text: "Save name", onclick: guarded(async () => {
          const person = await personByName(input.value.trim());
          await api("POST", `/v1/faces/${encodeURIComponent(face.face_id)}/corrections`, { is_person: person.id });
          say(`Noted: that face is ${person.name}.`);
          await loadPersons();
        }) }));
    }
    list.append(card);
  });
  $("#identify-result").replaceChildren(el("p", { text: `${result.faces.length} face${result.faces.length === 1 ? "" : "s"} in ${result.source_name}` }), list, ...receiptTable(result.receipt));
  await loadClusters();
}

async function loadClusters() {
  const list = $("#clusters");
  const query = new URLSearchParams({ limit: PAGE_SIZE, offset: state.clustersOffset });
  const page = await api("GET", `/console/api/clusters?${query}`);
  list.replaceChildren(...page.clusters.map((cluster, i) => {
    const input = el("input", { id: `cluster-name-${i}`, maxlength: 200, required: true });
    return el("li", { class: "card", "data-cluster": cluster.id },
      el("div", { class: "thumbs" }, cluster.face_ids.map((id) => crop(id, "an unknown person"))),
      el("span", { text: `seen ${cluster.size} times` }),
      el("label", { for: input.id, class: "small", text: "Name this person" }), input,
      el("button", { type: "button", text: "Name", onclick: guarded(async () => {
        if (!collectionId()) throw new Error("Create or pick a collection first.");
        const person = await api("POST", `/v1/clusters/${encodeURIComponent(cluster.id)}/promote`, { collection_id: collectionId(), name: input.value.trim() });
        say(`${person.name} now has ${person.face_count} faces.`);
        await Promise.all([loadPersons(), loadClusters()]);
      }) }));
  }));
  if (!page.clusters.length) list.append(el("li", { text: "No recurring unknown faces." }));
  pager($("#clusters-pager"), page, (offset) => { state.clustersOffset = offset; return loadClusters(); }, "groups");
}

async function searchFaces() {
  const body = new FormData();
  body.append("file", $("#facesearch-file").files[0]);
  const result = await api("POST", "/v1/faces/search", body);
  $("#facesearch-result").replaceChildren(...result.matches.map((m) => {
    const who = m.person_id ? state.names.get(m.person_id) || m.person_id : "unknown";
    return el("li", { class: "card" }, crop(m.face_id, who), el("strong", { text: who }),
      el("span", { text: `${m.similarity.toFixed(2)} · ${m.source_name}` }));
  }));
}

// -- search ----------------------------------------------------------------------------------------------

// An item's thumbnail, served to this tenant only; recordings, and items indexed before thumbnails were kept, get
// a placeholder.
function thumbnail(item) {
  const placeholder = (text, label) => el("span", { class: "thumb placeholder", role: "img", "aria-label": label, text });
  if (item.modality === "audio") return placeholder("♪ audio", `A recording: ${item.source}`);
  const img = el("img", { class: "thumb", src: `/console/api/items/${encodeURIComponent(item.id)}/thumbnail`, alt: `Picture of ${item.source}` });
  img.addEventListener("error", () => img.replaceWith(placeholder("no picture", `No picture of ${item.source}`)), { once: true });
  return img;
}

function hits(results) {
  const list = $("#search-result");
  list.replaceChildren(...results.hits.map((hit) => el("li", { class: "hit", "data-item": hit.item.id },
    thumbnail(hit.item),
    el("div", { class: "about" },
      el("strong", { text: hit.item.source }),
      el("span", { class: "kind", text: ` ${hit.item.modality} · score ${hit.score.toFixed(3)}` }),
      hit.persons.length ? el("span", { text: ` · ${hit.persons.join(", ")}` }) : null,
      el("ul", { class: "why", "aria-label": "Why it matched" }, hit.reasons.map((r) => el("li", { text: `${r.kind}: ${r.detail}` })))))));
  if (!results.hits.length) list.append(el("li", { text: "Nothing matched." }));
  say(`${results.hits.length} result${results.hits.length === 1 ? "" : "s"} in ${results.took_ms.toFixed(0)} ms.`);
}

function filters() {
  const out = {};
  const pairs = [["person", "#search-person"], ["label", "#search-label"], ["modality", "#search-kind"], ["since", "#search-since"], ["until", "#search-until"]];
  for (const [name, selector] of pairs) if ($(selector).value) out[name] = $(selector).value;
  if ($("#search-safe").checked) out.safe = "true";
  return out;
}

async function search() {
  const query = new URLSearchParams({ q: $("#search-q").value, ...filters() });
  hits(await api("GET", `/v1/search?${query}`));
}

async function searchImage() {
  const body = new FormData();
  body.append("file", $("#searchimage-file").files[0]);
  for (const [k, v] of Object.entries(filters())) body.append(k, v);
  hits(await api("POST", "/v1/search/image", body));
}

async function duplicates() {
  const { groups } = await api("GET", "/v1/search/duplicates");
  $("#duplicates-result").replaceChildren(groups.length ? el("ol", {}, groups.map((g) => el("li", { text: g.map((i) => i.source).join(" ≈ ") })))
    : el("p", { text: "No near-duplicates." }));
}

async function indexFiles() {
  const files = [...$("#index-files").files, ...$("#index-more").files];
  if (!files.length) throw new Error("Pick files or a folder first.");
  const progress = $("#index-progress");
  progress.max = files.length;
  progress.value = 0;
  let failed = 0;
  for (const file of files) {
    const body = new FormData();
    body.append("file", file);
    body.append("source", file.webkitRelativePath || file.name);
    try {
      await api("POST", "/v1/index", body);
    } catch (error) {
      failed += 1;
    }
    progress.value += 1;
    $("#index-count").textContent = `${progress.value} of ${files.length}`;
  }
  say(`Indexed ${files.length - failed} of ${files.length} files${failed ? ` (${failed} failed)` : ""}.`, failed > 0);
}

// -- costs -----------------------------------------------------------------------------------------------

// The usage ledger's features, in the order every day's bar stacks them (and the legend lists them).
const COST_FEATURES = ["faces", "identify", "labels", "moderation", "text", "speech", "search", "shared"];
const costRank = (feature) => (COST_FEATURES.includes(feature) ? COST_FEATURES.indexOf(feature) : COST_FEATURES.length);
const costClass = (feature) => `f-${String(feature).replace(/[^a-z]/g, "")}`;

// One bar a day, stacked by feature. Widths go through the CSSOM: the page's CSP refuses style attributes.
function costsChart(rows) {
  const days = new Map();
  for (const row of rows) {
    const parts = days.get(row.day) || new Map();
    parts.set(row.feature, (parts.get(row.feature) || 0) + row.cpu_seconds);
    days.set(row.day, parts);
  }
  const sum = (parts) => [...parts.values()].reduce((a, b) => a + b, 0);
  const top = Math.max(1e-9, ...[...days.values()].map(sum));
  const used = [...new Set(rows.map((r) => r.feature))].sort((a, b) => costRank(a) - costRank(b));
  const legend = el("ul", { class: "legend" }, used.map((f) => el("li", {}, el("span", { class: `swatch ${costClass(f)}` }), f)));
  const bars = [...days].map(([day, parts]) => {
    const cpu = sum(parts);
    const stack = el("span", { class: "stack" });
    stack.style.width = `${cpu > 0 ? Math.max(0.5, (100 * cpu) / top).toFixed(1) : 0}%`;
    const shares = [...parts].filter(([, s]) => s > 0).sort(([a], [b]) => costRank(a) - costRank(b));
    for (const [feature, s] of shares) {
      const segment = el("span", { class: `segment ${costClass(feature)}`, title: `${feature}: ${s.toFixed(3)} CPU-s` });
      segment.style.flexGrow = String(s / cpu); // shares add up to 1, so the stack is filled
      stack.append(segment);
    }
    const detail = shares.map(([f, s]) => `${f} ${s.toFixed(3)}`).join(", ");
    return el("li", { class: "bar", "aria-label": `${day}: ${cpu.toFixed(3)} CPU-seconds (${detail || "no CPU"})` },
      el("span", { class: "day", text: day }), el("span", { class: "track" }, stack),
      el("span", { text: `${cpu.toFixed(3)} CPU-s` }));
  });
  // A figure, not an image: its legend and each day's bar (labelled with its numbers) stay readable.
  const chart = $("#costs-chart");
  chart.setAttribute("role", "figure");
  chart.setAttribute("aria-label", days.size ? "CPU-seconds per day, stacked by feature" : "CPU-seconds per day: none in these days");
  chart.setAttribute("aria-describedby", "costs-table");
  chart.replaceChildren(legend, el("ol", { class: "bars" }, bars));
}

async function loadCosts() {
  const query = new URLSearchParams();
  if ($("#costs-since").value) query.set("since", $("#costs-since").value);
  if ($("#costs-until").value) query.set("until", $("#costs-until").value);
  const report = await api("GET", `/v1/usage?${query}`);
  costsChart(report.rows);
  const t = report.totals;
  $("#costs-totals").replaceChildren(...table(["", "CPU-seconds", "this server", "AWS Rekognition", "Google Cloud Vision"], [[
    `${t.requests} requests, ${report.since} to ${report.until}`,
    el("span", { "data-total-cpu": t.cpu_seconds, text: t.cpu_seconds.toFixed(4) }),
    el("span", { "data-total-usd": t.usd, text: money(t.usd) }), money(t.aws_rekognition_usd), money(t.google_vision_usd)]]));
  $("#costs-table").replaceChildren(...table(["day", "feature", "requests", "pictures billed", "CPU-seconds", "this server", "AWS", "Google"],
    report.rows.map((r) => [r.day, r.feature, String(r.count), String(r.units), r.cpu_seconds.toFixed(4), money(r.usd), money(r.cloud_usd.aws_rekognition), money(r.cloud_usd.google_vision)])));
}

// -- keys ------------------------------------------------------------------------------------------------

async function loadKeys() {
  const { keys } = await api("GET", "/v1/keys");
  $("#keys-table").replaceChildren(...table(["name", "role", "prefix", "created", ""], keys.map((k) => [
    k.name, k.role, k.prefix, k.created_at.slice(0, 16),
    k.revoked_at ? `revoked ${k.revoked_at.slice(0, 10)}` : el("button", { type: "button", text: `Revoke ${k.name}`, onclick: guarded(async () => {
      await api("DELETE", `/v1/keys/${encodeURIComponent(k.id)}`);
      say(`Revoked ${k.name}.`);
      await loadKeys();
    }) })])));
}

async function createKey() {
  const made = await api("POST", "/v1/keys", { name: $("#key-name").value, role: $("#key-role").value });
  $("#key-secret").replaceChildren("New key (shown once, copy it now): ", el("code", { text: made.key }));
  await loadKeys();
}

// -- wiring ----------------------------------------------------------------------------------------------

function wire() {
  const on = (selector, type, action) => $(selector).addEventListener(type, guarded(action));
  on("#signin-form", "submit", async () => {
    const who = await api("POST", "/console/session", { key: $("#signin-key").value });
    $("#signin-key").value = "";
    signedIn(who);
    say("Signed in.");
    await route();
  });
  on("#sign-out", "click", async () => {
    await api("DELETE", "/console/session");
    say("Signed out.");
    showSignIn();
  });
  on("#analyze-form", "submit", analyze);
  on("#documents-form", "submit", readDocument);
  on("#collection-form", "submit", async () => {
    const made = await api("POST", "/v1/collections", { name: $("#collection-name").value.trim() });
    $("#collection-name").value = "";
    await loadCollections();
    $("#people-collection").value = made.id;
    state.personsOffset = 0;
    await loadPersons();
  });
  on("#people-collection", "change", async () => { state.personsOffset = 0; await loadPersons(); });
  let typing = null;
  $("#person-filter").addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(guarded(async () => { state.personsOffset = 0; await loadPersons(); }), 250);
  });
  on("#person-form", "submit", async () => {
    if (!collectionId()) throw new Error("Create or pick a collection first.");
    const name = $("#person-name").value.trim();
    const person = await api("POST", `/v1/collections/${encodeURIComponent(collectionId())}/persons`, { name });
    const photo = $("#person-photo").files[0];
    if (photo) {
      const body = new FormData();
      body.append("file", photo);
      await api("POST", `/v1/persons/${encodeURIComponent(person.id)}/faces`, body);
    }
    $("#person-form").reset();
    say(`Added ${name}.`);
    await loadPersons();
  });
  on("#identify-form", "submit", identify);
  on("#facesearch-form", "submit", searchFaces);
  on("#search-form", "submit", search);
  on("#searchimage-form", "submit", searchImage);
  on("#duplicates", "click", duplicates);
  on("#index-form", "submit", indexFiles);
  on("#costs-form", "submit", loadCosts);
  on("#key-form", "submit", createKey);
  for (const drop of document.querySelectorAll(".drop")) {
    drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (event) => {
      event.preventDefault();
      drop.classList.remove("over");
      drop.querySelector("input[type=file]").files = event.dataTransfer.files;
    });
  }
  window.addEventListener("hashchange", route);
}

document.addEventListener("DOMContentLoaded", async () => {
  wire();
  try {
    signedIn(await api("GET", "/console/session"));
  } catch (error) {
    me = null;
  }
  await route();
});
