// SPDX-License-Identifier: LGPL-2.1-or-later
// The visualsearch page: upload, paste or drop a picture, see its nearest
// gallery pictures, click one for more like it; browse the gallery by label
// and open an original; a live tab shows the camera, and a Cameras tab the
// latest results of every camera pipeline the server subscribes to. An
// index of regions (faces, objects) is searched region by region: the boxes
// are drawn on the picture and the matches listed per box.
// No framework and nothing from the network but this server.
"use strict";

// A server started with --token wants it: open the page as /#token=SECRET.
const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
const withToken = (url) =>
  token ? url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token) : url;

const $ = (id) => document.getElementById(id);
let facts = null;
let events = null;
let camerasTimer = null;
const PAGE = 24;  // pictures per page of the gallery

async function api(url, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch(url, Object.assign({}, options, { headers }));
  let body;
  try {
    body = await response.json();
  } catch (e) {
    throw new Error(`the server answered ${response.status} without JSON`);
  }
  if (!response.ok) throw new Error(body.error || `the server answered ${response.status}`);
  return body;
}

function setStatus(element, text, isError = false) {
  element.textContent = text;
  element.classList.toggle("error", isError);
}

// A path that wraps after a slash, never inside a name.
function setPath(element, path) {
  element.replaceChildren();
  path.split("/").forEach((part, i, parts) => {
    const segment = document.createElement("span");
    segment.className = "segment";
    segment.textContent = i < parts.length - 1 ? part + "/" : part;
    element.append(segment);
    if (i < parts.length - 1) element.append(document.createElement("wbr"));
  });
}

// A picture that, if it cannot be shown, gives way to a sentence instead of
// the browser's broken-image icon.
function picture(src, alt, missing) {
  const img = document.createElement("img");
  img.alt = alt;
  img.loading = "lazy";
  img.addEventListener("error", () => {
    const note = document.createElement("div");
    note.className = "no-picture";
    note.textContent = missing;
    img.replaceWith(note);
  });
  img.src = src;
  return img;
}

// The query figure: the picture, or a sentence when it cannot be shown.
function showQuery(src, caption, path = "", original = "") {
  $("query").hidden = false;
  $("query-original").hidden = !original;
  if (original) $("query-original").href = withToken(original);
  $("query-img").hidden = false;
  $("query-note").hidden = true;
  $("query-img").src = src;
  setPath($("query-caption"), path);
  $("query-caption").prepend(caption);
}

// The similarity, larger is closer, whatever the index's metric
// (docs/scores.md); the distance is in the tooltip.
function score(n) {
  return `similarity ${n.similarity.toFixed(3)}`;
}

function renderResults(list, neighbors) {
  list.replaceChildren();
  for (const n of neighbors) {
    const li = document.createElement("li");
    li.tabIndex = 0;
    li.dataset.id = n.id;
    li.title = `More like #${n.id}`;
    // A result published by another pipeline names items of its own index:
    // those the served gallery does not hold come without a thumbnail.
    let img;
    if (n.thumbnail) {
      img = picture(withToken(n.thumbnail), n.label_name || `item ${n.id}`, "no thumbnail");
    } else {
      img = document.createElement("div");
      img.className = "no-picture";
      img.textContent = `#${n.id}, not in this gallery`;
    }
    const meta = document.createElement("div");
    meta.className = "meta";
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = (n.rank ? `${n.rank}. ` : "") + (n.label_name || "(no label)");
    meta.append(label);
    if (n.similarity !== undefined) {
      const scoreLine = document.createElement("span");
      scoreLine.textContent = score(n);
      scoreLine.title = `distance ${n.distance.toFixed(4)}`;
      meta.append(scoreLine);
    }
    const source = document.createElement("span");
    source.className = "source";
    setPath(source, n.source);
    meta.append(source);
    li.append(img, meta);
    if (n.thumbnail) {
      li.addEventListener("click", () => moreLike(n));
      li.addEventListener("keydown", (e) => { if (e.key === "Enter") moreLike(n); });
    } else {
      li.title = `#${n.id} from ${n.source}`;
    }
    list.append(li);
  }
}

// An index of regions answers with regions: one box each over the picture
// (drawn in percent of the picture searched, so it follows the picture's size
// on the page) and one list of matches each, numbered alike.
function drawBoxes(frame, regions, width, height) {
  for (const old of frame.querySelectorAll(".box")) old.remove();
  regions.forEach((r, i) => {
    const box = document.createElement("div");
    box.className = "box";
    box.style.left = `${(100 * r.x) / width}%`;
    box.style.top = `${(100 * r.y) / height}%`;
    box.style.width = `${(100 * r.w) / width}%`;
    box.style.height = `${(100 * r.h) / height}%`;
    box.textContent = `${i + 1}`;
    box.title = `${r.roi_type} ${i + 1}`;
    frame.append(box);
  });
}

function renderRegions(container, regions) {
  container.replaceChildren();
  regions.forEach((r, i) => {
    const section = document.createElement("section");
    section.className = "region";
    const head = document.createElement("h2");
    const best = r.neighbors[0];
    head.textContent = `${i + 1}. ${r.roi_type} at ${r.x},${r.y} (${r.w}×${r.h})` +
      (best ? ` · best: ${best.label_name || `#${best.id}`}, ${score(best)}` : " · no match");
    const grid = document.createElement("ol");
    grid.className = "grid";
    renderResults(grid, r.neighbors);
    section.append(head, grid);
    container.append(section);
  });
}

// Shows a search answer: the picture's neighbours, or its regions'.
function showAnswer(result) {
  const regions = result.regions;
  $("query").classList.toggle("regions", !!regions);
  $("region-results").hidden = !regions;
  $("results").hidden = !!regions;
  drawBoxes($("query-frame"), regions || [], result.query.width, result.query.height);
  if (regions) {
    renderRegions($("region-results"), regions);
    $("results").replaceChildren();
  } else {
    $("region-results").replaceChildren();
    renderResults($("results"), result.neighbors);
  }
}

function k() {
  const value = parseInt($("k").value, 10);
  return Number.isFinite(value) && value > 0 ? value : 10;
}

async function search(file) {
  if (!file) return;
  showTab("search");
  showQuery(URL.createObjectURL(file), "", file.name || "pasted picture");
  setStatus($("status"), "Searching…");
  try {
    const result = await api(`/api/search?k=${k()}`, { method: "POST", body: file });
    showAnswer(result);
    const t = result.timings;
    const found = result.regions
      ? (result.regions.length ? `${result.regions.length} region(s), searched one by one,`
                               : result.message)
      : `${result.neighbors.length} results`;
    setStatus($("status"), `${found} in ${t.total_ms.toFixed(0)} ms ` +
      `(embedding and search ${t.embed_search_ms.toFixed(0)} ms, batch of ${t.batch}).`);
  } catch (e) {
    showAnswer({ neighbors: [], query: { width: 1, height: 1 } });
    $("query").hidden = true;
    setStatus($("status"), e.message, true);
  }
}

async function moreLike(n) {
  showTab("search");
  showQuery(withToken(n.thumbnail), `#${n.id} ${n.label_name || ""} `, n.source,
            `/api/items/${n.id}/original`);
  window.scrollTo(0, 0);
  setStatus($("status"), `Finding pictures like #${n.id}…`);
  try {
    const result = await api(`/api/items/${n.id}/similar?k=${k()}`);
    showAnswer({ neighbors: result.neighbors, query: { width: 1, height: 1 } });
    setStatus($("status"), `${result.neighbors.length} pictures like #${n.id}.`);
  } catch (e) {
    setStatus($("status"), e.message, true);
  }
}

function showTab(name) {
  for (const tab of ["search", "live", "cameras"]) {
    $(`${tab}-view`).hidden = tab !== name;
    $(`tab-${tab}`).classList.toggle("active", tab === name);
  }
  if (name === "live") startLive(); else stopLive();
  if (name === "cameras") startCameras(); else stopCameras();
}

// The Cameras tab (--subscribe): one tile per source with its latest
// matches, read from /api/sources every second while the tab is shown.
function renderCameras(doc) {
  const list = $("cameras");
  const now = Date.now() * 1000;
  list.replaceChildren();
  for (const s of doc.sources) {
    const li = document.createElement("li");
    li.className = "camera";
    li.dataset.source = s.source;
    const head = document.createElement("h2");
    head.textContent = s.source;
    const info = document.createElement("p");
    info.className = "camera-info";
    const age = Math.max(0, (now - s.received_us) / 1e6);
    info.textContent = `frame ${s.frame} · ${s.messages} result${s.messages === 1 ? "" : "s"} · ` +
      (age < 2 ? "now" : `${age.toFixed(0)} s ago`);
    const grid = document.createElement("ol");
    grid.className = "grid";
    renderResults(grid, s.neighbors);
    if (!s.neighbors.length) info.textContent += " · no neighbours";
    li.append(head, info, grid);
    list.append(li);
  }
  const state = doc.connected ? `connected to ${doc.broker}` : `waiting for ${doc.broker}`;
  setStatus($("cameras-status"),
            `${doc.sources.length} sources on ${doc.topic}, ${state}` +
            (doc.rejected ? ` · ${doc.rejected} messages ignored` : "") + ".",
            !doc.connected);
}

async function pollCameras() {
  try {
    renderCameras(await api("/api/sources"));
  } catch (e) {
    setStatus($("cameras-status"), `Cannot read the sources: ${e.message}`, true);
  }
  if (camerasTimer !== null) camerasTimer = setTimeout(pollCameras, 1000);
}

function startCameras() {
  if (camerasTimer !== null) return;
  camerasTimer = 0;
  pollCameras();
}

function stopCameras() {
  if (camerasTimer) clearTimeout(camerasTimer);
  camerasTimer = null;
}

function startLive() {
  if (!facts || !facts.live) {
    $("live-figure").hidden = true;
    setStatus($("live-status"), "This server has no camera: start it with --camera.", true);
    return;
  }
  if (events) return;
  $("live-figure").hidden = false;
  $("live-img").hidden = false;
  $("live-img").src = withToken("/live.mjpeg");
  events = new EventSource(withToken("/api/live/events"));
  events.addEventListener("neighbors", (e) => {
    const frame = JSON.parse(e.data);
    // An index of regions: searchoverlay draws the boxes on the frames
    // themselves, in step with them; the matches are listed per box here.
    const regions = frame.regions;
    $("live-results").hidden = !!regions;
    $("live-region-results").hidden = !regions;
    if (regions) {
      renderRegions($("live-region-results"), regions);
      setStatus($("live-status"), `Frame ${frame.frame}: ` + (regions.length
        ? `${regions.length} region(s), each with its matches.` : "no region in this frame."));
      return;
    }
    renderResults($("live-results"), frame.neighbors);
    setStatus($("live-status"), `Frame ${frame.frame}: ${frame.neighbors.length} neighbours.`);
  });
  events.onerror = () => setStatus($("live-status"), "The live stream was interrupted; retrying…", true);
}

function stopLive() {
  if (!events) return;
  events.close();
  events = null;
  $("live-img").removeAttribute("src");
}

// One page of the gallery, of the label chosen.
async function browse(offset) {
  const label = $("browse-label").value;
  const url = `/api/items?offset=${offset}&limit=${PAGE}` + (label !== "" ? `&label=${label}` : "");
  try {
    const page = await api(url);
    renderResults($("browse-grid"), page.items);
    const last = page.offset + page.items.length;
    $("browse-page").textContent =
      page.total ? `${page.offset + 1}–${last} of ${page.total}` : "no pictures";
    $("browse-prev").disabled = page.offset === 0;
    $("browse-next").disabled = last >= page.total;
    $("browse-prev").onclick = () => browse(Math.max(0, page.offset - PAGE));
    $("browse-next").onclick = () => browse(last);
  } catch (e) {
    setStatus($("browse-page"), e.message, true);
  }
}

async function loadFacts() {
  try {
    facts = await api("/api/index");
    const labels = facts.labels.filter((l) => l.label >= 0).length;
    $("facts").textContent = `${facts.count} ` +
      (facts.roi_types ? `regions (${facts.roi_types}), searched one by one` : "pictures") +
      `, ${labels} labels · ${facts.model} · ` +
      `${facts.index_type} (${facts.metric}, ${facts.dims} dims)`;
    if (facts.random_weights) {
      // Short enough that a phone still shows the first result on its first screen.
      $("weights-notice").textContent =
        "Random weights: every score reads about the same and the matches mean little. " +
        "For real ones: models/fetch-weights.sh, then index-folder.sh with MODE=rebuild.";
      $("weights-notice").title = `The gallery was indexed with ${facts.model}.`;
      $("weights-notice").hidden = false;
    }
    $("tab-cameras").hidden = !facts.subscribe;
    $("k").max = facts.k_max;
    $("k").value = Math.min(facts.k_default, facts.k_max);
    for (const l of facts.labels) {
      const option = document.createElement("option");
      option.value = l.label;
      option.textContent = `${l.label_name || l.label} (${l.count})`;
      $("browse-label").append(option);
    }
    browse(0);
  } catch (e) {
    setStatus($("status"), `Cannot read the index: ${e.message}`, true);
  }
}

function init() {
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    search(e.dataTransfer.files[0]);
  });
  $("file").addEventListener("change", (e) => search(e.target.files[0]));
  document.addEventListener("paste", (e) => {
    const item = [...e.clipboardData.items].find((i) => i.type.startsWith("image/"));
    if (item) search(item.getAsFile());
  });
  $("tab-search").addEventListener("click", () => showTab("search"));
  $("browse-label").addEventListener("change", () => browse(0));
  $("tab-live").addEventListener("click", () => showTab("live"));
  $("tab-cameras").addEventListener("click", () => showTab("cameras"));
  // No broken-image icons: a query the browser cannot show, or a camera
  // stream that failed, leave a sentence instead.
  $("query-img").addEventListener("error", () => {
    if (!$("query-img").getAttribute("src")) return;
    $("query-img").hidden = true;
    $("query-note").hidden = false;
  });
  $("live-img").addEventListener("error", () => {
    if (!$("live-img").getAttribute("src")) return;
    $("live-img").hidden = true;
    setStatus($("live-status"), "The camera stream cannot be shown; reopen the tab to retry.", true);
  });
  loadFacts();
}

init();
