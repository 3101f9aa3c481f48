// Thumbs up or down on an answer; a thumbs down asks what it should have said (optional).
// Ratings go to /api/feedback, where fine-tuning picks them up.
import { el, failure, jsonHeaders } from "./dom.js";

export function showFeedback(turn, data) {
  if (!data.answer_id) return; // the server records no answers
  const bar = el("div", "feedback");
  const up = el("button", "rate up", "👍 Good");
  const down = el("button", "rate down", "👎 Wrong");
  up.type = down.type = "button";
  up.title = "Good answer";
  down.title = "Wrong or unhelpful answer";
  up.setAttribute("aria-label", up.title);
  down.setAttribute("aria-label", down.title);
  up.setAttribute("aria-pressed", "false");
  down.setAttribute("aria-pressed", "false");
  const status = el("span", "feedback-status");
  status.setAttribute("role", "status");
  const form = el("form", "correction");
  form.hidden = true;
  const correction = el("textarea");
  const label = el("label", "visually-hidden", "What should the answer have said?");
  correction.id = `correction-${data.answer_id}`;
  label.htmlFor = correction.id;
  correction.placeholder = "What should the answer have said? (optional)";
  correction.maxLength = 4000;
  correction.rows = 2;
  const send = el("button", "", "Send correction");
  send.type = "submit";
  form.append(label, correction, send);

  async function rate(rating, text) {
    const body = { answer_id: data.answer_id, rating };
    if (text) body.correction = text;
    try {
      const response = await fetch("/api/feedback", { method: "POST", headers: jsonHeaders(), body: JSON.stringify(body) });
      if (!response.ok) throw new Error(await failure(response));
      status.className = "feedback-status";
      status.textContent = rating === "up" ? "Thanks: rated good." : "Thanks: rated wrong" + (text ? ", with a correction." : ".");
      up.classList.toggle("chosen", rating === "up");
      down.classList.toggle("chosen", rating === "down");
      up.setAttribute("aria-pressed", String(rating === "up"));
      down.setAttribute("aria-pressed", String(rating === "down"));
      if (text) form.hidden = true;
    } catch (error) {
      status.className = "feedback-status error";
      status.textContent = `Feedback not saved: ${error.message}`;
    }
  }
  up.addEventListener("click", () => {
    form.hidden = true;
    rate("up");
  });
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
