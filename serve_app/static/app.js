// NIE web page: the upload page (#/) and the results page (#/results/ID).
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
  card.querySelector(".meta").textContent = parts.join(" · ");

  if (item.name === context.winner && isClearWinner(context)) {
    card.classList.add("winner");
    card.querySelector(".ribbon").hidden = false;
  }
  return card;
}

function isClearWinner(result) {
  // Highlight a best output only when there is a choice and it is not a tie at 2 decimals.
  if (result.outputs.length < 2) return false;
  const shown = result.outputs.map((o) => o.score.mean.toFixed(2));
  const best = result.outputs.find((o) => o.name === result.winner).score.mean.toFixed(2);
  return shown.filter((m) => m === best).length === 1;
}

function renderResults(result) {
  const task = TASK_NAMES[result.task] || result.task;
  const ensemble = result.ensemble ? " · x8 self-ensemble" : "";
  $("results-summary").textContent =
    `${task} ${formatScale(result.scale, result.task)}${ensemble} · NIMA mean score (1–10) ± std`;
  const cards = [result.input, ...result.outputs].map((item) => renderCard(item, result));
  $("results-grid").replaceChildren(...cards);
}

async function showResults(resultId) {
  showError($("results-error"), "");
  $("results-grid").replaceChildren();
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
