// The gateway's API, as the console uses it: the same routes and authorization as any client.
// The auth token lives only in the HttpOnly cookie the IAM's login sets; this code never sees
// it again after login and never stores it.

export class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function failure(response) {
  const text = (await response.text()).trim();
  return new HttpError(response.status, text || `HTTP ${response.status}`);
}

export async function getCatalog() {
  const response = await fetch("/console/api/catalog", { credentials: "same-origin" });
  if (!response.ok) throw await failure(response);
  return response.json();
}

export async function signIn(uid, password) {
  const response = await fetch("/acs/api/v1/auth/login", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ uid, password }),
  });
  if (!response.ok) throw await failure(response);
  await response.body?.cancel(); // the token is in the cookie; the body's copy is dropped
}

export async function signOut() {
  const response = await fetch("/console/api/logout", { method: "POST", credentials: "same-origin" });
  if (!response.ok) throw await failure(response);
}

// Server-sent events in a finite body (range reads): [{id, data}], in order.
export function parseEvents(text) {
  const events = [];
  for (const block of text.split("\n\n")) {
    let id = "";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("id:")) id = line.slice(3).trimStart();
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    }
    if (data.length) events.push({ id, data: data.join("\n") });
  }
  return events;
}

export async function readEvents(url) {
  const response = await fetch(url, {
    credentials: "same-origin",
    headers: { Accept: "text/event-stream" },
  });
  if (response.status === 204) return [];
  if (!response.ok) throw await failure(response);
  return parseEvents(await response.text());
}
