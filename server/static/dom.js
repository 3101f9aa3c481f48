// Small helpers shared by the page's modules: elements, the API key, JSON and event streams.
// Every text from the server is inserted with textContent, never as HTML.

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

const keyInput = document.getElementById("apikey");
keyInput.value = sessionStorage.getItem("ragqa-key") || "";

export function onKeyChange(callback) {
  keyInput.addEventListener("change", () => {
    sessionStorage.setItem("ragqa-key", keyInput.value);
    callback();
  });
}

// The Authorization header when a key was given (none when the server needs none).
export function keyHeaders() {
  return keyInput.value ? { Authorization: `Bearer ${keyInput.value}` } : {};
}

export function jsonHeaders() {
  return { ...keyHeaders(), "Content-Type": "application/json" };
}

// Show the key box when the server answered 401; hide it when no key is needed or set.
export function keyNeeded(needed) {
  const box = document.getElementById("settings");
  box.hidden = !needed && !keyInput.value;
  box.open = needed;
  if (needed) keyInput.focus();
}

// The message of an error reply ({"error": {"message": ...}}), or its HTTP status.
export async function failure(response) {
  const data = await response.json().catch(() => ({}));
  return data.error ? data.error.message : `HTTP ${response.status}`;
}

export async function getJson(url) {
  const response = await fetch(url, { headers: keyHeaders() });
  if (response.status === 401) keyNeeded(true);
  if (!response.ok) throw Object.assign(new Error(await failure(response)), { status: response.status });
  return response.json();
}

// Read server-sent events from a fetch response; call onEvent(name, data) for each.
export async function readEvents(response, onEvent) {
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
      if (data) onEvent(name, JSON.parse(data));
    }
  }
}

// A file's name from its source id (a path or a URL).
export function fileName(source) {
  return source.split(/[\\/]/).pop() || source;
}
