// Elements from data, as text only: nothing here ever parses HTML. Log lines are written by
// whoever runs a task (issue 15 §2), so every string goes through textContent or setAttribute.

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "className") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

export function byId(id) {
  return document.getElementById(id);
}

export function show(node, visible) {
  node.hidden = !visible;
}
