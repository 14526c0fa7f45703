// The daemon's JSON API as the page uses it, and the token: asked for in a dialog, kept in
// this tab's sessionStorage, sent only as a bearer header (never in a URL).

const TOKEN_KEY = "greenai.token";

export class Unauthorized extends Error {}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

function headers() {
  const value = token();
  return value ? { Authorization: `Bearer ${value}` } : {};
}

async function detail(response) {
  try {
    const body = await response.json();
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail)) {  // a 422: each problem with the field it names
      return body.detail.map((e) => `${(e.loc || []).slice(-1)[0] ?? "body"}: ${e.msg}`).join("; ");
    }
    return JSON.stringify(body.detail);
  } catch {
    return response.statusText;
  }
}

// GET a JSON resource: null for a 404 (nothing there yet), Unauthorized for a 401.
export async function getJson(path) {
  const response = await fetch(path, { headers: headers(), cache: "no-store" });
  if (response.status === 404) return null;
  if (response.status === 401) throw new Unauthorized(await detail(response));
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await detail(response)}`);
  return response.json();
}

// POST (a JSON ``body`` if given) with the token; asks for one first when the tab has none.
export async function postWithToken(path, why, body = undefined) {
  if (!token() && !(await askToken(why))) return { ok: false, message: "no token given" };
  const init = { method: "POST", headers: headers() };
  if (body !== undefined) {
    init.headers = { ...init.headers, "Content-Type": "application/json" };
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 401) {
    forgetToken();
    return { ok: false, message: `refused: ${await detail(response)}` };
  }
  if (!response.ok) return { ok: false, message: `${response.status}: ${await detail(response)}` };
  return { ok: true, body: await response.json() };
}

// Show the token dialog; resolves true once a token is stored, false if the user cancels.
export function askToken(why) {
  const dialog = document.getElementById("token-dialog");
  const input = document.getElementById("token-input");
  document.getElementById("token-why").textContent =
    `${why} needs the daemon's token (GREENAI_API_TOKEN).`;
  input.value = "";
  return new Promise((resolve) => {
    const cancel = document.getElementById("token-cancel");
    const done = (given) => {
      dialog.removeEventListener("close", onClose);
      cancel.removeEventListener("click", onCancel);
      resolve(given);
    };
    const onClose = () => {
      const value = input.value.trim();
      input.value = "";
      if (dialog.returnValue === "ok" && value) {
        sessionStorage.setItem(TOKEN_KEY, value);
        done(true);
      } else {
        done(false);
      }
    };
    const onCancel = () => dialog.close("cancel");
    dialog.addEventListener("close", onClose);
    cancel.addEventListener("click", onCancel);
    dialog.returnValue = "";
    dialog.showModal();
    input.focus();
  });
}
