// NIE web page: the upload page (#/) and the results page (#/results/ID) with its comparison
// view (one region of every image, magnified pixel for pixel, and a before/after slider).
// Plain browser JavaScript, no build step: it talks to /v1/models, /v1/compare and /v1/results.
"use strict";

const TASK_NAMES = { sr: "Super-resolution", deblur: "Deblurring" };

const state = {
  models: [],            // from GET /v1/models
  results: new Map(),    // result id -> compare response (avoids a refetch after upload)
};

const $ = (id) => document.getElementById(id);

// ----------------------------------------------------------------------------- helpers

function errorText(body, status) {
  // FastAPI validation errors carry a list of {loc, msg}; ours a string.
  if (body && typeof body.detail === "string") return body.detail;
  if (body && Array.isArray(body.detail)) {
    return body.detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
  }
  return `request failed with status ${status}`;
}

async function fetchJson(url, options) {
  const response = await fetch(url, options);
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null;
  }
  if (!response.ok) throw new Error(errorText(body, response.status));
  return body;
}

function showError(element, message) {
  element.textContent = message;
  element.hidden = !message;
}

function formatScale(scale, task) {
  return task === "deblur" && scale === 1 ? "same size" : `x${scale}`;
}

// ----------------------------------------------------------------------------- upload page

function modelsOfTask(task) {
  return state.models.filter((m) => m.task === task);
}

function fillTaskSelect() {
  const select = $("task-select");
  const tasks = [...new Set(state.models.map((m) => m.task))];
  select.replaceChildren(...tasks.map((t) => new Option(TASK_NAMES[t] || t, t)));
  fillScaleAndModels();
}

function fillScaleAndModels() {
  const task = $("task-select").value;
  const models = modelsOfTask(task);
  const scales = [...new Set(models.flatMap((m) => m.scales))].sort((a, b) => a - b);
  const scaleSelect = $("scale-select");
  const previous = Number(scaleSelect.value);
  scaleSelect.replaceChildren(...scales.map((s) => new Option(formatScale(s, task), String(s))));
  if (scales.includes(previous)) scaleSelect.value = String(previous);
  fillModelList();
}

function fillModelList() {
  const task = $("task-select").value;
  const scale = Number($("scale-select").value);
  const list = $("model-list");
  const models = modelsOfTask(task).filter((m) => m.scales.includes(scale));
  if (!models.length) {
    list.replaceChildren(Object.assign(document.createElement("span"), {
      className: "muted", textContent: "No model serves this task and scale.",
    }));
  } else {
    list.replaceChildren(...models.map((m) => {
      const label = document.createElement("label");
      label.className = "model-option";
      const box = Object.assign(document.createElement("input"), {
        type: "checkbox", value: m.name, checked: true, name: "models",
      });
      const name = Object.assign(document.createElement("span"), { textContent: m.name });
      label.append(box, name);
      if (m.label) label.append(chip(m.label));
      if (!m.trained) label.append(chip("untrained", "warn"));
      return label;
    }));
  }
  updateSubmit();
}

function chip(text, extra) {
  const span = document.createElement("span");
  span.className = `chip ${extra || text}`;
  span.textContent = text;
  return span;
}

function selectedModels() {
  return [...document.querySelectorAll("#model-list input:checked")].map((box) => box.value);
}

function updateSubmit() {
  const hasFile = $("file-input").files.length > 0;
  $("submit-button").disabled = !(hasFile && selectedModels().length);
}

function showPreview(file) {
  const preview = $("preview");
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
  $("drop-hint").hidden = true;
  preview.onload = () => {
    $("file-info").textContent =
      `${file.name} · ${preview.naturalWidth}×${preview.naturalHeight} · ${(file.size / 1024).toFixed(0)} KiB`;
  };
  preview.onerror = () => {
    $("file-info").textContent = `${file.name} (the browser cannot preview it; the server may still read it)`;
  };
}

async function submitUpload(event) {
  event.preventDefault();
  const file = $("file-input").files[0];
  if (!file) return;
  const form = new FormData();
  form.append("image", file);
  form.append("task", $("task-select").value);
  form.append("scale", $("scale-select").value);
  form.append("models", selectedModels().join(","));
  form.append("ensemble", $("ensemble-check").checked ? "true" : "false");

  showError($("upload-error"), "");
  $("submit-button").disabled = true;
  $("status").textContent = "Enhancing and scoring…";
  $("status").classList.add("busy");
  try {
    const result = await fetchJson("v1/compare", { method: "POST", body: form });
    state.results.set(result.result_id, result);
    location.hash = `#/results/${result.result_id}`;
  } catch (error) {
    showError($("upload-error"), error.message);
  } finally {
    $("status").textContent = "";
    $("status").classList.remove("busy");
    updateSubmit();
  }
}

// ----------------------------------------------------------------------------- results page

function renderCard(item, context) {
  const card = $("card-template").content.firstElementChild.cloneNode(true);
  const isInput = item.name === "input";
  card.classList.toggle("input-card", isInput);
  card.dataset.name = item.name;
  card.querySelector(".card-title").textContent = isInput ? "Input" : item.name;
  const label = card.querySelector(".chip");
  label.textContent = isInput ? "original" : (item.label || "model");
  label.classList.add(isInput ? "original" : (item.label || "model"));

  const link = card.querySelector(".image-link");
  link.href = item.url;
  link.title = `Open ${item.width}×${item.height} PNG in a new tab`;
  const img = card.querySelector(".card-image");
  img.src = item.url;
  img.alt = isInput ? "uploaded image" : `output of ${item.name}`;

  const score = item.score;
  card.querySelector(".score-mean").textContent = score ? score.mean.toFixed(2) : "–";
  card.querySelector(".score-std").textContent = score ? `± ${score.std.toFixed(2)}` : "";
  const delta = card.querySelector(".delta");
  if (!isInput && score && context.input.score) {
    const d = score.mean - context.input.score.mean;
    delta.textContent = `${d >= 0 ? "+" : "−"}${Math.abs(d).toFixed(2)} vs input`;
    delta.classList.add(d >= 0 ? "up" : "down");
  }
  if (score) {
    const peak = Math.max(...score.distribution);
    const bars = score.distribution.map((p, i) => {
      const bar = document.createElement("span");
      bar.style.height = `${Math.max(2, (100 * p) / peak)}%`;
      bar.title = `score ${i + 1}: ${(100 * p).toFixed(1)} %`;
      return bar;
    });
    card.querySelector(".histogram").replaceChildren(...bars);
  }
  const parts = [`${item.width}×${item.height}`];
  if (item.elapsed_ms != null) parts.push(`${(item.elapsed_ms / 1000).toFixed(2)} s`);
  const region = item.judges && item.judges.region;
  if (region && (region[2] < item.width || region[3] < item.height)) {
    parts.push(`NIQE, artifacts: centre ${region[2]}×${region[3]}`);
  }
  card.querySelector(".meta").textContent = parts.join(" · ");

  renderJudges(card, item.judges);
  // The badge and its absence come from the server (nie_core.judging): "best" only when no
  // judge rates this output worse than another one; otherwise it says which judge disagrees.
  const verdict = item.verdict;
  if (verdict && verdict.best) {
    card.classList.add("winner");
    card.querySelector(".ribbon").hidden = false;
    card.querySelector(".ribbon").title = `${verdict.reason}.`;
  } else if (verdict) {
    const note = card.querySelector(".verdict-note");
    note.textContent = `Not best: ${verdict.reason}.`;
    note.hidden = false;
  }
  return card;
}

// The judges shown beside NIMA (the score badge): [key, title, which way is better, format].
const JUDGE_ROWS = [
  ["niqe", "NIQE", "lower is better", (v) => v.toFixed(2)],
  ["lr_psnr_y", "LR-consistency", "higher is better", (v) => `${v.toFixed(2)} dB`],
  ["artifacts", "Artifacts", "lower is better", (v) => `${v.toFixed(2)} dB`],
];

function renderJudges(card, judges) {
  const list = card.querySelector(".judges");
  if (!judges) return;
  list.replaceChildren(...JUDGE_ROWS.flatMap(([key, title, better, format]) => {
    const dt = document.createElement("dt");
    dt.append(title, " ", Object.assign(document.createElement("span"), {
      className: "hint", textContent: `(${better})`,
    }));
    const value = judges[key];
    const dd = Object.assign(document.createElement("dd"), {
      textContent: value == null ? "–" : format(value),
    });
    dd.dataset.judge = key;
    if (value == null) dd.title = "not measured (image too small)";
    return [dt, dd];
  }));
  list.hidden = false;
}

function renderResults(result) {
  const task = TASK_NAMES[result.task] || result.task;
  const ensemble = result.ensemble ? " · x8 self-ensemble" : "";
  $("results-summary").textContent =
    `${task} ${formatScale(result.scale, result.task)}${ensemble} · NIMA mean score (1–10) ± std, ` +
    "and NIQE, LR-consistency and artifacts for each output";
  const cards = [result.input, ...result.outputs].map((item) => renderCard(item, result));
  $("results-grid").replaceChildren(...cards);
  showComparison(result);
}

async function showResults(resultId) {
  showError($("results-error"), "");
  $("results-grid").replaceChildren();
  hideComparison();
  $("results-summary").textContent = "Loading…";
  try {
    let result = state.results.get(resultId);
    if (!result) {
      result = await fetchJson(`v1/results/${encodeURIComponent(resultId)}`);
      state.results.set(resultId, result);
    }
    renderResults(result);
  } catch (error) {
    $("results-summary").textContent = "";
    showError($("results-error"), `${error.message}. Results are kept for a limited time; upload the image again.`);
  }
}

// ----------------------------------------------------------------------------- comparison view
//
// Every magnified view shows the same square region, given in pixels of the largest image (the
// outputs); the input is read at 1/scale of those coordinates. The region is aligned to the
// scale, so every view is an exact integer magnification: canvases drawn with smoothing off,
// shown at their own size (CSS image-rendering: pixelated if the page has to shrink them).

const VIEW_PX = 256;        // side of every magnified view, in CSS pixels
const compare = {
  token: 0,                 // increases per result shown; stale image loads are dropped
  items: [],                // the input and the outputs (compare response items)
  images: new Map(),        // name -> loaded HTMLImageElement
  ref: null,                // the largest item: region coordinates are its pixels
  align: 1,                 // region positions and sizes are multiples of this (the scale)
  x: 0, y: 0, size: 0,      // the region, in ref pixels
  zoom: 4,
  dragging: false,
};

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error(`cannot load ${url}`));
    img.src = url;
  });
}

function hideComparison() {
  compare.token += 1;
  $("compare-view").hidden = true;
}

async function showComparison(result) {
  const token = ++compare.token;
  const items = [result.input, ...result.outputs];
  let loaded;
  try {
    loaded = await Promise.all(items.map((item) => loadImage(item.url)));
  } catch (error) {
    return; // the cards show the broken image; nothing to compare
  }
  if (token !== compare.token) return; // another result is on screen now
  compare.items = items;
  compare.images = new Map(items.map((item, i) => [item.name, loaded[i]]));
  compare.ref = items.reduce((a, b) => (b.width * b.height > a.width * a.height ? b : a));
  compare.align = Math.max(1, Math.round(compare.ref.width / result.input.width));

  const options = () => items.map((item) => new Option(itemTitle(item), item.name));
  $("compare-before").replaceChildren(...options());
  $("compare-after").replaceChildren(...options());
  const [before, after] = defaultPair(result);
  $("compare-before").value = before;
  $("compare-after").value = after;

  $("crops").replaceChildren(
    ...items.map((item) => cropFigure(
      item.name, itemTitle(item), item.name === "input" ? "original" : item.label,
    )),
    cropFigure("difference", "Difference", "difference"),
  );
  $("compare-view").hidden = false;
  setZoom(Number(document.querySelector("input[name='zoom']:checked").value), true);
}

function itemTitle(item) {
  return item.name === "input" ? "Input" : item.name;
}

function defaultPair(result) {
  // Baseline against hybrid when both are there (the outputs worth telling apart), else the
  // input against the (best) output.
  const outputs = result.outputs;
  if (outputs.length >= 2) {
    const before = outputs.find((o) => o.label === "baseline") || outputs[0];
    const after = outputs.find((o) => o !== before && o.label === "hybrid")
      || outputs.find((o) => o !== before);
    return [before.name, after.name];
  }
  return ["input", outputs.length ? outputs[0].name : "input"];
}

function cropFigure(name, title, label) {
  const figure = document.createElement("figure");
  figure.className = "zoom-view crop";
  figure.dataset.name = name;
  const canvas = document.createElement("canvas");
  canvas.className = "pixelated";
  canvas.setAttribute("role", "img");
  const caption = document.createElement("figcaption");
  const strong = Object.assign(document.createElement("strong"), { textContent: title });
  caption.append(strong, " ", chip(label || "model"));
  if (name === "difference") {
    caption.append(Object.assign(document.createElement("span"), { className: "diff-note muted" }));
  }
  figure.append(canvas, caption);
  return figure;
}

function regionSize() {
  // As many ref pixels as fill VIEW_PX at this zoom, a multiple of the scale, within the image.
  const { align, ref, zoom } = compare;
  const fit = Math.floor(Math.min(ref.width, ref.height) / align) * align;
  return Math.max(align, Math.min(Math.floor(VIEW_PX / zoom / align) * align, fit));
}

function setZoom(zoom, keepCentre) {
  const { x, y, size } = compare;
  const centre = keepCentre && size ? [x + size / 2, y + size / 2] : null;
  compare.zoom = zoom;
  compare.size = regionSize();
  if (centre) centreRegion(...centre);
  else centreRegion(compare.ref.width / 2, compare.ref.height / 2);
}

function centreRegion(cx, cy) {
  moveRegion(cx - compare.size / 2, cy - compare.size / 2);
}

function moveRegion(x, y) {
  const { align, ref, size } = compare;
  const snap = (v, max) => Math.min(Math.max(0, Math.round(v / align) * align), max);
  compare.x = snap(x, ref.width - size);
  compare.y = snap(y, ref.height - size);
  renderComparison();
}

function pixelsOf(name, outSize) {
  // The region of image `name`, drawn at outSize x outSize with nearest-neighbour sampling.
  const item = compare.items.find((i) => i.name === name);
  const f = item.width / compare.ref.width;  // 1 for outputs, 1/scale for the input
  const canvas = document.createElement("canvas");
  canvas.width = outSize;
  canvas.height = outSize;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.imageSmoothingEnabled = false;
  const { x, y, size } = compare;
  ctx.drawImage(compare.images.get(name), x * f, y * f, size * f, size * f, 0, 0, outSize, outSize);
  return canvas;
}

function drawMagnified(canvas, source) {
  const side = compare.size * compare.zoom;
  canvas.width = side;  // also clears the canvas and resets its context
  canvas.height = side;
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(source, 0, 0, side, side);
}

function drawDifference(canvas, beforeName, afterName) {
  // |after - before| per channel at region resolution, amplified so that small differences
  // show (the gain is a power of two, written under the view).
  const size = compare.size;
  const read = (name) => pixelsOf(name, size).getContext("2d").getImageData(0, 0, size, size).data;
  const a = read(beforeName);
  const b = read(afterName);
  const peaks = new Uint8Array(size * size);
  let total = 0;
  for (let p = 0, i = 0; p < peaks.length; p += 1, i += 4) {
    const dr = Math.abs(a[i] - b[i]);
    const dg = Math.abs(a[i + 1] - b[i + 1]);
    const db = Math.abs(a[i + 2] - b[i + 2]);
    peaks[p] = Math.max(dr, dg, db);
    total += dr + dg + db;
  }
  const sorted = Uint8Array.from(peaks).sort();
  const p99 = sorted[Math.min(sorted.length - 1, Math.floor(0.99 * sorted.length))];
  const gain = Math.min(64, Math.max(1, 2 ** Math.floor(Math.log2(255 / Math.max(1, p99)))));
  const small = document.createElement("canvas");
  small.width = size;
  small.height = size;
  const ctx = small.getContext("2d");
  const out = ctx.createImageData(size, size);
  for (let i = 0; i < out.data.length; i += 4) {
    for (let c = 0; c < 3; c += 1) out.data[i + c] = Math.min(255, Math.abs(a[i + c] - b[i + c]) * gain);
    out.data[i + 3] = 255;
  }
  ctx.putImageData(out, 0, 0);
  drawMagnified(canvas, small);
  const mean = total / (3 * size * size);
  const note = mean === 0 ? "identical pixels" : `|after − before| × ${gain} · mean ${mean.toFixed(2)} levels`;
  canvas.closest("figure").querySelector(".diff-note").textContent = note;
  canvas.setAttribute("aria-label", `Difference between ${afterName} and ${beforeName} in the region: ${note}`);
}

function renderComparison() {
  const { x, y, size, zoom, ref, align } = compare;
  const before = $("compare-before").value;
  const after = $("compare-after").value;

  // The overview: the after image with the region marked.
  const nav = $("navigator-image");
  const afterItem = compare.items.find((i) => i.name === after);
  if (nav.getAttribute("src") !== afterItem.url) nav.src = afterItem.url;
  nav.alt = `${itemTitle(afterItem)}, overview`;
  const box = $("region-box");
  box.style.left = `${(100 * x) / ref.width}%`;
  box.style.top = `${(100 * y) / ref.height}%`;
  box.style.width = `${(100 * size) / ref.width}%`;
  box.style.height = `${(100 * size) / ref.height}%`;
  const inputNote = align > 1 ? ` (input ${x / align}, ${y / align}, ${size / align}×${size / align})` : "";
  const status = `Region ${x}, ${y}, ${size}×${size} of ${ref.width}×${ref.height} px${inputNote} · zoom ${zoom}×`;
  $("region-status").textContent = status;
  $("compare-view").dataset.region = `${x},${y},${size},${zoom}`;

  // The before/after split view.
  const side = size * zoom;
  $("split").style.width = `${side}px`;  // square (CSS aspect-ratio)
  drawMagnified($("split-before"), pixelsOf(before, size));
  drawMagnified($("split-after"), pixelsOf(after, size));
  $("split-before-label").textContent = before === "input" ? "Input" : before;
  $("split-after-label").textContent = after === "input" ? "Input" : after;
  updateSplit();

  // One crop per image, and the difference of the pair.
  for (const figure of $("crops").children) {
    const canvas = figure.querySelector("canvas");
    const name = figure.dataset.name;
    if (name === "difference") {
      drawDifference(canvas, before, after);
    } else {
      drawMagnified(canvas, pixelsOf(name, size));
      canvas.setAttribute("aria-label", `${name} at ${zoom}× zoom, region ${x}, ${y}`);
    }
  }
}

function updateSplit() {
  const slider = $("split-slider");
  const p = Number(slider.value);
  $("split-after").style.clipPath = `inset(0 0 0 ${p}%)`;
  $("split-divider").style.left = `${p}%`;
  const before = $("compare-before").value;
  const after = $("compare-after").value;
  slider.setAttribute("aria-valuetext", `${p} %: ${before} left of the divider, ${after} right of it`);
  $("split").setAttribute("aria-label", `Before/after view at ${compare.zoom}× zoom: ${before} left of the divider, ${after} right of it`);
}

function pointerToRef(event, element) {
  const rect = element.getBoundingClientRect();
  return [
    ((event.clientX - rect.left) / rect.width) * compare.ref.width,
    ((event.clientY - rect.top) / rect.height) * compare.ref.height,
  ];
}

function initComparison() {
  const nav = $("navigator");
  const image = $("navigator-image");
  nav.addEventListener("pointerdown", (event) => {
    if (event.button !== 0 || !compare.ref) return;
    event.preventDefault();
    nav.focus();
    nav.setPointerCapture(event.pointerId);
    compare.dragging = true;
    centreRegion(...pointerToRef(event, image));
  });
  nav.addEventListener("pointermove", (event) => {
    if (compare.dragging) centreRegion(...pointerToRef(event, image));
  });
  const stop = () => { compare.dragging = false; };
  nav.addEventListener("pointerup", stop);
  nav.addEventListener("pointercancel", stop);
  nav.addEventListener("keydown", (event) => {
    if (!compare.ref) return;
    const { align, size } = compare;
    const step = event.shiftKey ? size : Math.max(align, Math.round(size / 4 / align) * align);
    const moves = {
      ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step],
      Home: [-Infinity, -Infinity], End: [Infinity, Infinity],
    };
    const move = moves[event.key];
    if (!move) return;
    event.preventDefault();
    const clamp = (v) => (Number.isFinite(v) ? v : Math.sign(v) * 1e9);
    moveRegion(compare.x + clamp(move[0]), compare.y + clamp(move[1]));
  });

  // Dragging on the split view moves the divider (the range input is its keyboard control).
  const split = $("split");
  const slider = $("split-slider");
  const follow = (event) => {
    const rect = split.getBoundingClientRect();
    slider.value = String(Math.round((100 * (event.clientX - rect.left)) / rect.width));
    updateSplit();
  };
  split.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    event.preventDefault();
    split.setPointerCapture(event.pointerId);
    split.dataset.dragging = "true";
    follow(event);
  });
  split.addEventListener("pointermove", (event) => {
    if (split.dataset.dragging) follow(event);
  });
  const release = () => { delete split.dataset.dragging; };
  split.addEventListener("pointerup", release);
  split.addEventListener("pointercancel", release);
  slider.addEventListener("input", updateSplit);

  $("compare-before").addEventListener("change", renderComparison);
  $("compare-after").addEventListener("change", renderComparison);
  for (const radio of document.querySelectorAll("input[name='zoom']")) {
    radio.addEventListener("change", () => setZoom(Number(radio.value), true));
  }
}

// ----------------------------------------------------------------------------- routing

function route() {
  const match = location.hash.match(/^#\/results\/([A-Za-z0-9_-]+)$/);
  $("upload-view").hidden = Boolean(match);
  $("results-view").hidden = !match;
  if (match) showResults(match[1]);
}

async function init() {
  $("upload-form").addEventListener("submit", submitUpload);
  $("task-select").addEventListener("change", fillScaleAndModels);
  $("scale-select").addEventListener("change", fillModelList);
  $("model-list").addEventListener("change", updateSubmit);
  $("file-input").addEventListener("change", () => {
    const file = $("file-input").files[0];
    if (file) showPreview(file);
    updateSubmit();
  });
  const zone = $("drop-zone");
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer.files.length) {
      $("file-input").files = e.dataTransfer.files;
      showPreview(e.dataTransfer.files[0]);
      updateSubmit();
    }
  });
  initComparison();
  window.addEventListener("hashchange", route);
  route();
  try {
    const info = await fetchJson("v1/models");
    state.models = info.models;
    fillTaskSelect();
  } catch (error) {
    $("model-list").textContent = "";
    showError($("upload-error"), `Cannot list the models: ${error.message}`);
  }
}

init();
