// The chat page: streams answers from /api/chat (server-sent events), with their citations,
// sources and thumbs; the compare view; the collection picker and documents (library.js).
import { el, failure, jsonHeaders, keyNeeded, onKeyChange, readEvents } from "./dom.js";
import { showFeedback } from "./feedback.js";
import { collection, loadCollections } from "./library.js";
import { renderAnswer, showMeta, showSources } from "./sources.js";

const log = document.getElementById("log");
const form = document.getElementById("ask");
const questionInput = document.getElementById("question");
const modeInput = document.getElementById("mode");
const adapterInput = document.getElementById("adapter");
const stopButton = document.getElementById("stop");
// The conversation so far, sent with each question so follow-ups keep their context.
let history = [];
// The answer being streamed, which Stop aborts (the server then stops generating).
let running = null;

function busy(controller) {
  running = controller;
  stopButton.hidden = !controller;
}
stopButton.addEventListener("click", () => running && running.abort());

async function start() {
  try {
    await loadCollections();
    keyNeeded(false);
  } catch (error) {
    if (error.status !== 401) document.getElementById("upload-status").textContent = error.message;
  }
}
onKeyChange(start);
start();

document.getElementById("new").addEventListener("click", () => {
  history = [];
  log.replaceChildren();
  questionInput.focus();
});

function newTurn(question, waiting) {
  const turn = el("article", "turn");
  turn.appendChild(el("div", "question", question));
  const answer = el("div", "answer pending", waiting);
  turn.appendChild(answer);
  log.appendChild(turn);
  turn.scrollIntoView({ block: "end" });
  return [turn, answer];
}

function fail(answer, message) {
  answer.className = "answer error";
  answer.textContent = message;
}

async function ask(question, mode) {
  const [turn, answer] = newTurn(question, "Searching…");
  const body = { question, history, stream: true, collection: collection() };
  if (mode) body.mode = mode; // else the server's RAGQA_ANSWERS__MODE
  const adapter = adapterInput.value.trim();
  if (mode && mode.startsWith("finetuned") && adapter) body.adapter = adapter;
  const headers = { ...jsonHeaders(), Accept: "text/event-stream" };
  const controller = new AbortController();
  busy(controller);
  try {
    const request = { method: "POST", headers, body: JSON.stringify(body), signal: controller.signal };
    const response = await fetch("/api/chat", request);
    if (response.status === 401) keyNeeded(true);
    if (!response.ok) return fail(answer, await failure(response));
    let text = "";
    await readEvents(response, (name, data) => {
      if (name === "retrieval") answer.textContent = "Writing…";
      else if (name === "token") {
        text += data.text;
        answer.className = "answer streaming";
        answer.textContent = text;
      } else if (name === "answer") {
        answer.className = data.refused ? "answer refused" : "answer";
        renderAnswer(answer, data);
        showSources(turn, data);
        showMeta(turn, data);
        showFeedback(turn, data);
        history.push({ role: "user", content: question }, { role: "assistant", content: data.answer });
        history = history.slice(-20);
      } else if (name === "error") fail(answer, data.error.message);
    });
  } catch (error) {
    if (error.name !== "AbortError") fail(answer, `Request failed: ${error.message}`);
    else {
      answer.className = "answer stopped";
      answer.append(el("span", "flag", " (stopped)"));
    }
  } finally {
    busy(null);
  }
}

// The compare view: one question in every mode (the fine-tuned ones too when an adapter is
// named), side by side, each with its sources and thumbs.
async function compareModes(question) {
  const [turn, status] = newTurn(question, "Answering in every mode…");
  const modes = ["extractive", "rag", "closed_book", "few_shot"];
  const body = { question, modes, collection: collection() };
  if (adapterInput.value.trim()) {
    body.adapter = adapterInput.value.trim();
    modes.push("finetuned_rag", "finetuned");
  }
  try {
    const response = await fetch("/api/compare", { method: "POST", headers: jsonHeaders(), body: JSON.stringify(body) });
    if (!response.ok) return fail(status, `Compare failed: ${await failure(response)}`);
    const data = await response.json();
    status.remove();
    const grid = el("div", "compare-grid");
    for (const [mode, result] of Object.entries(data.answers)) {
      const cell = el("section", "compare-cell");
      cell.setAttribute("aria-label", `Answer in mode ${mode}`);
      cell.appendChild(el("div", "meta", mode));
      const answer = el("div", result.refused ? "answer refused" : "answer");
      renderAnswer(answer, result);
      cell.appendChild(answer);
      showSources(cell, result);
      showFeedback(cell, result);
      grid.appendChild(cell);
    }
    turn.appendChild(grid);
  } catch (error) {
    fail(status, `Compare failed: ${error.message}`);
  }
}

function takeQuestion() {
  const question = questionInput.value.trim();
  questionInput.value = "";
  return question;
}

document.getElementById("compare").addEventListener("click", () => {
  const question = takeQuestion();
  if (question) compareModes(question);
  else questionInput.focus();
});

form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (running) return; // one answer at a time: the question waits in its box
  const question = takeQuestion();
  if (question) ask(question, modeInput.value);
});
