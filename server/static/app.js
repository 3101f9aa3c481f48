// The chat page: posts questions to /api/chat and shows answers with their sources.
// Every text from the server is inserted with textContent, never as HTML.
"use strict";

const log = document.getElementById("log");
const form = document.getElementById("ask");
const questionInput = document.getElementById("question");
const collectionInput = document.getElementById("collection");
const keyInput = document.getElementById("apikey");

keyInput.value = sessionStorage.getItem("ragqa-key") || "";
keyInput.addEventListener("change", () => sessionStorage.setItem("ragqa-key", keyInput.value));

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
  for (const c of data.citations) {
    const item = el("div", "source");
    const name = c.source.split("/").pop();
    const where = c.page ? `${name}, page ${c.page}` : name;
    item.appendChild(el("div", "where", `[${c.n}] ${where}`));
    item.appendChild(el("div", "text", c.text));
    box.appendChild(item);
  }
  box.open = true;
  turn.appendChild(box);
}

async function ask(question, collection) {
  const turn = el("div", "turn");
  turn.appendChild(el("div", "question", question));
  const answer = el("div", "answer", "Thinking…");
  turn.appendChild(answer);
  log.appendChild(turn);
  const headers = { "Content-Type": "application/json" };
  if (keyInput.value) headers.Authorization = `Bearer ${keyInput.value}`;
  const body = { question };
  if (collection) body.collection = collection;
  try {
    const response = await fetch("/api/chat", { method: "POST", headers, body: JSON.stringify(body) });
    const data = await response.json();
    if (!response.ok) {
      answer.className = "answer error";
      answer.textContent = data.error ? data.error.message : `HTTP ${response.status}`;
      return;
    }
    answer.textContent = data.answer;
    if (data.refused) answer.className = "answer refused";
    showSources(turn, data);
    const total = data.timings_ms && data.timings_ms.total;
    if (total) turn.appendChild(el("div", "meta", `${data.mode} · ${(total / 1000).toFixed(1)} s`));
  } catch (error) {
    answer.className = "answer error";
    answer.textContent = `Request failed: ${error}`;
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const question = questionInput.value.trim();
  if (!question) return;
  questionInput.value = "";
  ask(question, collectionInput.value.trim());
});
