// The collection picker, the chosen collection's documents (delete for writers), and upload
// with progress: bytes sent, then files read by the ingest job, then its report.
import { el, failure, fileName, getJson, keyHeaders } from "./dom.js";

const picker = document.getElementById("collection");
const title = document.getElementById("library-collection");
const list = document.getElementById("documents");
const uploadForm = document.getElementById("upload-form");
const filesInput = document.getElementById("files");
const progress = document.getElementById("upload-progress");
const status = document.getElementById("upload-status");
const report = document.getElementById("upload-report");
let mayWrite = false;
let existing = new Set(); // collections with documents (the default one may not exist yet)

const count = (n, noun) => `${n} ${noun}${n === 1 ? "" : "s"}`;

export function collection() {
  return picker.value || picker.dataset.default;
}

// Fill the picker with the collections the key may use; keep the current choice if it is there.
export async function loadCollections() {
  const data = await getJson("/api/collections");
  const chosen = picker.value || data.default || picker.dataset.default;
  const names = data.collections.map((c) => c.name);
  if (data.default && !names.includes(data.default)) names.unshift(data.default); // empty yet
  picker.replaceChildren();
  for (const name of names) {
    const row = data.collections.find((c) => c.name === name);
    const option = el("option", "", row ? `${name} (${count(row.documents, "document")})` : `${name} (empty)`);
    option.value = name;
    picker.appendChild(option);
  }
  if (names.includes(chosen)) picker.value = chosen;
  existing = new Set(data.collections.map((c) => c.name));
  mayWrite = data.may_write;
  uploadForm.hidden = !mayWrite;
  document.getElementById("whoami").textContent = data.role === "admin" ? "" : `signed in as ${data.role}`;
  await loadDocuments();
}

export async function loadDocuments() {
  const name = collection();
  title.textContent = name || "no collection";
  list.replaceChildren();
  if (!existing.has(name)) {
    list.appendChild(el("li", "empty", name ? "No documents yet." : "No collection to show."));
    return;
  }
  let data;
  try {
    data = await getJson(`/api/collections/${encodeURIComponent(name)}/documents`);
  } catch (error) {
    if (error.status !== 404) list.appendChild(el("li", "error", `Could not list documents: ${error.message}`));
    else list.appendChild(el("li", "empty", "No documents yet."));
    return;
  }
  if (!data.documents.length) list.appendChild(el("li", "empty", "No documents yet."));
  for (const doc of data.documents) {
    const item = el("li", doc.status === "failed" ? "document failed" : "document");
    item.appendChild(el("span", "name", fileName(doc.source)));
    item.title = doc.source;
    const facts = doc.status === "failed" ? `failed: ${doc.error}` : `${count(doc.pages, "page")} · ${count(doc.chunks, "passage")}`;
    item.appendChild(el("span", "facts", facts));
    if (mayWrite) item.appendChild(deleteButton(name, doc));
    list.appendChild(item);
  }
}

function deleteButton(name, doc) {
  const button = el("button", "delete", "Delete");
  button.type = "button";
  button.setAttribute("aria-label", `Delete ${fileName(doc.source)}`);
  button.addEventListener("click", async () => {
    if (!window.confirm(`Delete ${fileName(doc.source)} from ${name}? Its passages stop being used in answers.`)) return;
    const url = `/api/collections/${encodeURIComponent(name)}/documents?source=${encodeURIComponent(doc.source)}`;
    const response = await fetch(url, { method: "DELETE", headers: keyHeaders() });
    status.className = response.ok ? "" : "error";
    status.textContent = response.ok ? `Deleted ${fileName(doc.source)}.` : `Not deleted: ${await failure(response)}`;
    await loadCollections();
  });
  return button;
}

// POST the files with XMLHttpRequest, whose upload events report the bytes sent (fetch has none).
function send(url, body) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", url);
    for (const [header, value] of Object.entries(keyHeaders())) request.setRequestHeader(header, value);
    request.upload.addEventListener("progress", (event) => {
      if (!event.lengthComputable) return;
      progress.value = Math.round((100 * event.loaded) / event.total);
      status.textContent = `Uploading… ${progress.value}%`;
    });
    request.addEventListener("load", () => {
      let data = {};
      try { data = JSON.parse(request.responseText); } catch { /* not JSON: use the status */ }
      if (request.status >= 200 && request.status < 300) resolve(data);
      else reject(new Error(data.error ? data.error.message : `HTTP ${request.status}`));
    });
    request.addEventListener("error", () => reject(new Error("the connection failed")));
    request.send(body);
  });
}

function showReport(name, result) {
  const parts = [`${result.files_ok} added to ${name} (${result.chunks_added} passages)`];
  if (result.files_unchanged) parts.push(`${result.files_unchanged} unchanged`);
  if (result.attachments.length) parts.push(`${result.attachments.length} attachments`);
  if (result.files_failed) parts.push(`${result.files_failed} failed`);
  status.className = result.files_failed ? "error" : "";
  status.textContent = parts.join(" · ");
  report.replaceChildren();
  for (const e of result.errors) report.appendChild(el("li", "error", `${fileName(e.path)}: ${e.error}`));
  for (const s of result.skipped) report.appendChild(el("li", "", `${fileName(s.path)} skipped: ${s.reason}`));
  for (const [path, pages] of Object.entries(result.ocr_pages)) {
    report.appendChild(el("li", "", `${fileName(path)}: text read by OCR on pages ${pages.join(", ")}`));
  }
}

uploadForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const files = filesInput.files;
  if (!files.length) return;
  const name = collection();
  const body = new FormData();
  for (const file of files) body.append("files", file);
  report.replaceChildren();
  status.className = "";
  progress.hidden = false;
  progress.value = 0;
  try {
    const job = await send(`/api/collections/${encodeURIComponent(name)}/documents?wait=false`, body);
    let state = { status: "queued" };
    while (state.status === "running" || state.status === "queued") {
      await new Promise((resolve) => setTimeout(resolve, 400));
      state = await getJson(job.status_url);
      const total = state.files_total || files.length;
      progress.value = Math.round((100 * (state.files_done || 0)) / total);
      status.textContent = `Reading ${state.files_done || 0} of ${total} files…`;
    }
    if (!state.report) throw new Error(state.error || "the ingest job failed");
    showReport(name, state.report);
    uploadForm.reset();
    await loadCollections();
  } catch (error) {
    status.className = "error";
    status.textContent = `Upload failed: ${error.message}`;
  } finally {
    progress.hidden = true;
  }
});

picker.addEventListener("change", () => {
  status.textContent = "";
  report.replaceChildren();
  loadDocuments();
});
