// The JSON API over fetch, with the session cookie (never a token here).

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `request failed (${status})`);
    this.status = status;
    this.code = body?.error?.code;
    this.details = body?.error?.details;
  }
}

export async function api(method, path, body) {
  const options = { method, credentials: "same-origin", headers: {} };
  if (body instanceof FormData) {
    options.body = body;
  } else if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    // A proxy's HTML error page, say: the status tells what happened.
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// Public profiles by id, each fetched once. A name is needed for every
// message, so lookups are shared while in flight.
const users = new Map();

export function cacheUser(user) {
  if (user?.id) users.set(user.id, Promise.resolve(user));
}

export function getUser(id) {
  if (!users.has(id)) {
    const lookup = api("GET", `/api/v1/users/${encodeURIComponent(id)}`).catch(() => ({
      id, username: "unknown", display_name: "Unknown user",
    }));
    users.set(id, lookup);
  }
  return users.get(id);
}

export function forgetUsers() {
  users.clear();
}
