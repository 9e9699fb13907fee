// Sign in: a password or an API key, exchanged at POST /v1/sessions for the broker's session cookie
// (HttpOnly, so this page never holds the credential afterwards). Every later call, SSE included,
// rides on that cookie; unsafe methods are protected by the broker's Origin check.

import { api } from "../api.js";
import { field, h, replace } from "../dom.js";
import { errorView } from "../state.js";

export function login(onSignedIn, reason) {
  const username = h("input", { name: "username", autocomplete: "username" });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password" });
  const apiKey = h("input", { name: "api_key", type: "password", autocomplete: "off", placeholder: "tlk_…" });
  const status = h("div", { id: "login-status" });
  const form = h("form", { class: "panel login", id: "login" },
    h("h1", {}, "Sign in"),
    reason ? h("p", { class: "muted" }, reason) : null,
    field("User name", username), field("Password", password),
    h("p", { class: "muted" }, "or"),
    field("API key", apiKey),
    h("button", { type: "submit" }, "Sign in"), status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = apiKey.value ? { api_key: apiKey.value } : { username: username.value, password: password.value };
    try {
      await api("POST", "/v1/sessions", { body });
      password.value = "";
      apiKey.value = "";
      await onSignedIn();
    } catch (err) {
      replace(status, errorView(err));
    }
  });
  return form;
}
