// The chat page: streams answers from /api/chat (server-sent events) and shows their sources.
// Every text from the server is inserted with textContent, never as HTML.
"use strict";

const log = document.getElementById("log");
const form = document.getElementById("ask");
const questionInput = document.getElementById("question");
const collectionInput = document.getElementById("collection");
const modeInput = document.getElementById("mode");
const keyInput = document.getElementById("apikey");
const adapterInput = document.getElementById("adapter");
// The conversation so far, sent with each question so follow-ups keep their context.
let history = [];

keyInput.value = sessionStorage.getItem("ragqa-key") || "";
keyInput.addEventListener("change", () => {
  sessionStorage.setItem("ragqa-key", keyInput.value);
  checkKey();
});

// Ask for a key only when the server requires one: probe a read route; 401 shows the box.
const keyBox = document.getElementById("settings");
async function checkKey() {
  const headers = keyInput.value ? { Authorization: `Bearer ${keyInput.value}` } : {};
  const response = await fetch("/api/collections", { headers }).catch(() => null);
  const needed = response !== null && response.status === 401;
  keyBox.hidden = !needed && !keyInput.value;
  keyBox.open = needed;
}
checkKey();
document.getElementById("new").addEventListener("click", () => {
  history = [];
  log.replaceChildren();
});

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function showSources(turn, data) {
  if (!data.citations || data.citations.length === 0) return;
  const box = el("details", "sources");
  const label = data.citations_inferred ? "Closest sources (not cited by the model)" : "Sources";
  box.appendChild(el("summary", "", `${label} (${data.citations.length})`));
  const unsupported = new Set(data.unsupported_citations || []);
  for (const c of data.citations) {
    const item = el("div", unsupported.has(c.n) ? "source unsupported" : "source");
    const name = c.source.split("/").pop();
    const where = c.location ? `${name}, ${c.location}` : c.page ? `${name}, page ${c.page}` : name;
    const flag = unsupported.has(c.n) ? " (does not support the sentence citing it)" : "";
    item.appendChild(el("div", "where", `[${c.n}] ${where}${flag}`));
    item.appendChild(el("div", "text", c.text));
    box.appendChild(item);
  }
  box.open = !data.refused;
  turn.appendChild(box);
}

function showMeta(turn, data) {
  const parts = [data.adapter ? `${data.mode} (${data.adapter})` : data.mode];
  if (data.standalone_question) parts.push(`searched for: ${data.standalone_question}`);
  if (data.replaced_reason) parts.push(`quoted from the sources: the model's answer failed (${data.replaced_reason})`);
  const dropped = data.context && data.context.dropped.length;
  if (dropped) parts.push(`${dropped} sources did not fit the model's window`);
  const total = data.timings_ms && data.timings_ms.total;
  if (total) parts.push(`${(total / 1000).toFixed(1)} s`);
  turn.appendChild(el("div", "meta", parts.join(" · ")));
}

function authHeaders() {
  const headers = { "Content-Type": "application/json" };
  if (keyInput.value) headers.Authorization = `Bearer ${keyInput.value}`;
  return headers;
}

// Thumbs up or down on an answer; a thumbs down asks what it should have said (optional).
function showFeedback(turn, data) {
  if (!data.answer_id) return; // the server records no answers
  const bar = el("div", "feedback");
  const up = el("button", "rate up", "👍");
  const down = el("button", "rate down", "👎");
  up.type = down.type = "button";
  up.title = "Good answer";
  down.title = "Wrong or unhelpful answer";
  up.setAttribute("aria-label", up.title);
  down.setAttribute("aria-label", down.title);
  const status = el("span", "feedback-status");
  const form = el("form", "correction");
  form.hidden = true;
  const correction = el("textarea");
  correction.placeholder = "What should the answer have said? (optional)";
  correction.maxLength = 4000;
  correction.rows = 2;
  const send = el("button", "", "Send");
  send.type = "submit";
  form.append(correction, send);
  async function rate(rating, text) {
    const body = { answer_id: data.answer_id, rating };
    if (text) body.correction = text;
    try {
      const response = await fetch("/api/feedback", { method: "POST", headers: authHeaders(), body: JSON.stringify(body) });
      const reply = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error(reply.error ? reply.error.message : `HTTP ${response.status}`);
      status.className = "feedback-status";
      status.textContent = rating === "up" ? "Thanks: rated good." : "Thanks: rated wrong" + (text ? ", with a correction." : ".");
      up.classList.toggle("chosen", rating === "up");
      down.classList.toggle("chosen", rating === "down");
      form.hidden = true;
    } catch (error) {
      status.className = "feedback-status error";
      status.textContent = `Feedback not saved: ${error.message}`;
    }
  }
  up.addEventListener("click", () => rate("up"));
  down.addEventListener("click", () => {
    form.hidden = false;
    correction.focus();
    rate("down");
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    rate("down", correction.value.trim());
  });
  bar.append(up, down, status);
  turn.append(bar, form);
}

// Read server-sent events from a fetch response; call onEvent(name, data) for each.
async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      let data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) name = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      onEvent(name, JSON.parse(data));
    }
  }
}

async function ask(question, collection, mode) {
  const turn = el("div", "turn");
  turn.appendChild(el("div", "question", question));
  const answer = el("div", "answer", "Searching…");
  turn.appendChild(answer);
  log.appendChild(turn);
  const headers = { ...authHeaders(), Accept: "text/event-stream" };
  const body = { question, history, stream: true };
  if (mode) body.mode = mode; // else the server's RAGQA_ANSWERS__MODE
  if (collection) body.collection = collection;
  if (mode && mode.startsWith("finetuned") && adapterInput.value.trim()) body.adapter = adapterInput.value.trim();
  try {
    const response = await fetch("/api/chat", { method: "POST", headers, body: JSON.stringify(body) });
    if (!response.ok) {
      const data = await response.json().catch(() => ({}));
      answer.className = "answer error";
      answer.textContent = data.error ? data.error.message : `HTTP ${response.status}`;
      return;
    }
    let text = "";
    await readEvents(response, (name, data) => {
      if (name === "retrieval") answer.textContent = "Writing…";
      else if (name === "token") {
        text += data.text;
        answer.textContent = text;
      } else if (name === "answer") {
        answer.textContent = data.answer;
        if (data.refused) answer.className = "answer refused";
        showSources(turn, data);
        showMeta(turn, data);
        showFeedback(turn, data);
        history.push({ role: "user", content: question }, { role: "assistant", content: data.answer });
        history = history.slice(-20);
      } else if (name === "error") {
        answer.className = "answer error";
        answer.textContent = data.error.message;
      }
    });
  } catch (error) {
    answer.className = "answer error";
    answer.textContent = `Request failed: ${error}`;
  }
}

// The compare view: one question in every mode (the fine-tuned ones too when an adapter is
// named), side by side, each with its sources and thumbs.
async function compareModes(question, collection) {
  const turn = el("div", "turn");
  turn.appendChild(el("div", "question", question));
  const status = el("div", "answer", "Answering in every mode…");
  turn.appendChild(status);
  log.appendChild(turn);
  const modes = ["extractive", "rag", "closed_book", "few_shot"];
  const body = { question, modes };
  if (adapterInput.value.trim()) {
    body.adapter = adapterInput.value.trim();
    modes.push("finetuned_rag", "finetuned");
  }
  if (collection) body.collection = collection;
  try {
    const response = await fetch("/api/compare", { method: "POST", headers: authHeaders(), body: JSON.stringify(body) });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.error ? data.error.message : `HTTP ${response.status}`);
    status.remove();
    const grid = el("div", "compare-grid");
    for (const [mode, answer] of Object.entries(data.answers)) {
      const cell = el("div", "compare-cell");
      cell.appendChild(el("div", "meta", mode));
      cell.appendChild(el("div", answer.refused ? "answer refused" : "answer", answer.answer));
      showSources(cell, answer);
      showFeedback(cell, answer);
      grid.appendChild(cell);
    }
    turn.appendChild(grid);
  } catch (error) {
    status.className = "answer error";
    status.textContent = `Compare failed: ${error.message}`;
  }
}

document.getElementById("compare").addEventListener("click", () => {
  const question = questionInput.value.trim();
  if (!question) return;
  questionInput.value = "";
  compareModes(question, collectionInput.value.trim());
});

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const question = questionInput.value.trim();
  if (!question) return;
  questionInput.value = "";
  ask(question, collectionInput.value.trim(), modeInput.value);
});

// Upload files into the collection named above (or the default one); the server ingests them
// as a job, polled here until it reports what was added and what failed.
const uploadForm = document.getElementById("upload-form");
const uploadStatus = document.getElementById("upload-status");
uploadForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const files = document.getElementById("files").files;
  if (!files.length) return;
  const collection = collectionInput.value.trim() || collectionInput.dataset.default;
  const body = new FormData();
  for (const file of files) body.append("files", file);
  const headers = keyInput.value ? { Authorization: `Bearer ${keyInput.value}` } : {};
  uploadStatus.className = "";
  uploadStatus.textContent = `Uploading ${files.length} file(s)…`;
  try {
    const url = `/api/collections/${encodeURIComponent(collection)}/documents?wait=false`;
    const response = await fetch(url, { method: "POST", headers, body });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.error ? data.error.message : `HTTP ${response.status}`);
    let job = data;
    do {
      await new Promise((resolve) => setTimeout(resolve, 500));
      job = await (await fetch(data.status_url, { headers })).json();
      uploadStatus.textContent = `Reading ${job.files_done ?? 0} of ${job.files_total ?? files.length}…`;
    } while (job.status === "running" || job.status === "queued");
    if (!job.report) throw new Error(job.error || "the ingest job failed");
    const report = job.report;
    const parts = [`${report.files_ok} added to ${collection}`];
    if (report.attachments.length) parts.push(`${report.attachments.length} attachments`);
    if (report.files_failed) parts.push(`${report.files_failed} failed: ` +
      report.errors.map((e) => `${e.path.split("/").pop()} (${e.error})`).join("; "));
    uploadStatus.className = report.files_failed ? "error" : "";
    uploadStatus.textContent = parts.join(" · ");
    uploadForm.reset();
  } catch (error) {
    uploadStatus.className = "error";
    uploadStatus.textContent = `Upload failed: ${error.message}`;
  }
});
