// Citations: the answer's [n] markers become buttons that open the cited passage (file, page,
// the sentence that backs the answer highlighted); unsupported citations are marked.
import { el, fileName } from "./dom.js";

const dialog = document.getElementById("passage");
const MARKER = /\[(\d+(?:\s*,\s*\d+)*)\]/g;

function where(c) {
  const name = fileName(c.source);
  if (c.location) return `${name}, ${c.location}`;
  return c.page ? `${name}, page ${c.page}` : name;
}

// Open the passage of citation `c` in the dialog; `unsupported`: it does not back its sentence.
export function openPassage(c, unsupported) {
  document.getElementById("passage-title").textContent = `Source [${c.n}]: ${fileName(c.source)}`;
  const place = [c.location || (c.page ? `page ${c.page}` : ""), c.source].filter(Boolean);
  document.getElementById("passage-where").textContent = place.join(" · ");
  const warning = document.getElementById("passage-warning");
  warning.hidden = !unsupported;
  warning.textContent = unsupported ? "This passage does not support the sentence that cites it." : "";
  const quote = document.getElementById("passage-text");
  quote.replaceChildren();
  const [start, end] = c.highlight || [0, 0];
  if (end > start) {
    const mark = el("mark", "", c.text.slice(start, end));
    quote.append(c.text.slice(0, start), mark, c.text.slice(end));
  } else {
    quote.textContent = c.text;
  }
  dialog.showModal();
  quote.querySelector("mark")?.scrollIntoView({ block: "center" });
}

function citeButton(n, citation, unsupported) {
  const button = el("button", unsupported ? "cite unsupported" : "cite", `[${n}]`);
  button.type = "button";
  const flag = unsupported ? " (does not support this sentence)" : "";
  button.title = `${where(citation)}${flag}`;
  button.setAttribute("aria-label", `Source ${n}: ${where(citation)}${flag}`);
  button.addEventListener("click", () => openPassage(citation, unsupported));
  return button;
}

// Fill `node` with the answer text, its [n] markers turned into citation buttons. A number
// that names no given source stays as text, struck through.
export function renderAnswer(node, data) {
  const byNumber = new Map((data.citations || []).map((c) => [c.n, c]));
  const unsupported = new Set(data.unsupported_citations || []);
  node.replaceChildren();
  let last = 0;
  for (const match of data.answer.matchAll(MARKER)) {
    node.append(data.answer.slice(last, match.index));
    const group = el("span", "cites");
    for (const part of match[1].split(",")) {
      const n = Number(part.trim());
      const citation = byNumber.get(n);
      if (citation) group.append(citeButton(n, citation, unsupported.has(n)));
      else {
        const bad = el("s", "cite invalid", `[${n}]`);
        bad.title = "This number names no source the model was given.";
        group.append(bad);
      }
    }
    node.append(group);
    last = match.index + match[0].length;
  }
  node.append(data.answer.slice(last));
}

// The list of sources under an answer, each opening its passage.
export function showSources(turn, data) {
  if (!data.citations || data.citations.length === 0) return;
  const box = el("details", "sources");
  const label = data.citations_inferred ? "Closest sources (not cited by the model)" : "Sources";
  box.appendChild(el("summary", "", `${label} (${data.citations.length})`));
  const unsupported = new Set(data.unsupported_citations || []);
  const list = el("ol", "source-list");
  for (const c of data.citations) {
    const bad = unsupported.has(c.n);
    const item = el("li", bad ? "source unsupported" : "source");
    const open = el("button", "source-open", `[${c.n}] ${where(c)}`);
    open.type = "button";
    open.addEventListener("click", () => openPassage(c, bad));
    item.appendChild(open);
    if (bad) item.appendChild(el("span", "flag", " does not support the sentence citing it"));
    item.appendChild(el("div", "text", c.text.length > 240 ? `${c.text.slice(0, 240)}…` : c.text));
    list.appendChild(item);
  }
  box.appendChild(list);
  box.open = !data.refused && !data.citations_inferred;
  turn.appendChild(box);
}

export function showMeta(turn, data) {
  const parts = [data.adapter ? `${data.mode} (${data.adapter})` : data.mode];
  if (data.standalone_question) parts.push(`searched for: ${data.standalone_question}`);
  if (data.replaced_reason) parts.push(`quoted from the sources: the model's answer failed (${data.replaced_reason})`);
  const dropped = data.context && data.context.dropped.length;
  if (dropped) parts.push(`${dropped} sources did not fit the model's window`);
  const total = data.timings_ms && data.timings_ms.total;
  if (total) parts.push(`${(total / 1000).toFixed(1)} s`);
  turn.appendChild(el("div", "meta", parts.join(" · ")));
}
