// The admin console: sign-in, hash routes and the pages (tenants, lines, calls, tokens, audit).
// Everything shown comes from the admin API; a read-only token is shown no write control.

import { ApiError, api, forgetToken, keepToken, onUnauthorized, path, storedToken } from "./api.js";
import {
  alertError, announce, clear, display, field, formError, formMessage, h, readForm, row,
  showErrors, table, when,
} from "./ui.js";

const state = { actor: null, role: null, fields: null, flash: null };
const view = () => document.getElementById("view");
const canWrite = () => state.role === "admin";

// ---- sign-in ----------------------------------------------------------------------------------

async function signIn(token) {
  keepToken(token);
  try {
    const { data } = await api("GET", "/v1/admin/whoami");
    state.actor = data.actor;
    state.role = data.role;
  } catch (error) {
    forgetToken();
    throw error;
  }
  if (!state.fields) state.fields = await (await fetch("/admin/assets/fields.json", { cache: "no-store" })).json();
  document.getElementById("who").textContent = `Signed in as ${state.actor} (${state.role})`;
  for (const id of ["who", "sign-out", "nav"]) document.getElementById(id).hidden = false;
  document.getElementById("sign-in").hidden = true;
  view().hidden = false;
}

function signOut(message) {
  forgetToken();
  state.actor = state.role = null;
  for (const id of ["who", "sign-out", "nav"]) document.getElementById(id).hidden = true;
  clear(view());
  view().hidden = true;
  document.getElementById("sign-in").hidden = false;
  const input = document.getElementById("token");
  input.value = "";
  input.focus();
  alertError("");
  announce(message || "Signed out.");
}

function setUpSignIn() {
  const form = document.getElementById("sign-in-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = document.getElementById("token");
    const error = document.getElementById("token-error");
    error.textContent = "";
    input.removeAttribute("aria-invalid");
    const token = input.value.trim();
    if (!token) {
      error.textContent = "Enter a token.";
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    try {
      await signIn(token);
    } catch (e) {
      error.textContent = e.status === 401 ? "This token is not known here (or was revoked)."
        : e.status === 403 ? "This is not an admin or read-only token." : e.message;
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    input.value = "";
    announce(`Signed in as ${state.actor}.`);
    if (!location.hash.startsWith("#/")) location.hash = "#/tenants";
    else route(true);
  });
  document.getElementById("sign-out").addEventListener("click", () => signOut());
  onUnauthorized(() => {
    if (state.role) signOut("Your token was refused (revoked or unknown): signed out.");
  });
}

// ---- routing ----------------------------------------------------------------------------------

const routes = [
  [/^#\/tenants$/, () => tenantsPage()],
  [/^#\/tenants\/new$/, () => tenantPage(null)],
  [/^#\/tenants\/([^/]+)$/, (id) => tenantPage(decodeURIComponent(id))],
  [/^#\/lines$/, () => linesPage()],
  [/^#\/lines\/new$/, () => linePage(null)],
  [/^#\/lines\/([^/]+)$/, (n) => linePage(decodeURIComponent(n))],
  [/^#\/calls$/, () => callsPage()],
  [/^#\/calls\/([^/]+)$/, (sid) => callPage(decodeURIComponent(sid))],
  [/^#\/tokens$/, () => tokensPage()],
  [/^#\/audit$/, () => auditPage()],
];

async function route(focus) {
  if (!state.role) return;
  const hash = location.hash.startsWith("#/") ? location.hash : "#/tenants";
  const section = hash.split("/")[1];
  document.querySelectorAll("#nav a").forEach((a) => {
    if (a.dataset.section === section) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  });
  alertError("");
  document.getElementById("status").textContent = "";
  for (const [pattern, render] of routes) {
    const match = hash.match(pattern);
    if (!match) continue;
    try {
      await render(...match.slice(1));
    } catch (error) {
      pageError(error);
    }
    if (focus) view().querySelector("h1")?.focus();
    return;
  }
  page("Not found", h("p", { text: "There is no such page." }));
}

function page(title, ...content) {
  const flash = state.flash;
  state.flash = null;
  clear(view(), h("h1", { tabindex: "-1", text: title }), flash, ...content);
}

function pageError(error) {
  if (error instanceof ApiError && error.status === 401) return;
  page("Something went wrong", h("p", { class: "form-error", text: describe(error) }));
}

function describe(error) {
  if (!(error instanceof ApiError)) return String(error);
  if (error.validation) return error.validation.map((d) => d.msg).join("; ");
  return `${error.message} (HTTP ${error.status})`;
}

function missing(what) {
  return h("p", { class: "notice", text: `${what} is not available on this config-api yet (it answers 404). Update config-api to use it.` });
}

function go(hash, flash) {
  state.flash = flash ? h("p", { class: "flash", text: flash }) : null;
  if (flash) announce(flash);
  if (location.hash === hash) route(true);
  else location.hash = hash;
}

function linkTo(hash, text) {
  return h("a", { href: hash, text });
}

function button(text, onclick, props = {}) {
  return h("button", { type: "button", onclick, ...props }, text);
}

// Submit handler: 422s next to their fields, other refusals in the form's message.
function submitting(form, prefix, action) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    formMessage(form, "");
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    try {
      await action();
    } catch (error) {
      if (error instanceof ApiError && error.validation) showErrors(form, prefix, error.validation);
      else if (!(error instanceof ApiError && error.status === 401)) formMessage(form, describe(error));
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

// A button that asks once more before it acts.
function confirming(label, question, confirmLabel, action) {
  const holder = h("div", { class: "confirm" });
  const ask = button(label, () => {
    ask.hidden = true;
    const cancel = button("Cancel", () => {
      clear(holder, ask);
      ask.hidden = false;
      ask.focus();
    }, { class: "secondary" });
    const yes = button(confirmLabel, async () => {
      yes.disabled = true;
      try {
        await action();
      } catch (error) {
        alertError(describe(error));
        yes.disabled = false;
      }
    }, { class: "danger" });
    clear(holder, ask, h("p", { text: question }), yes, " ", cancel);
    yes.focus();
  }, { class: "danger" });
  holder.append(ask);
  return holder;
}

// ---- tenants ----------------------------------------------------------------------------------

const CREDENTIALS = [
  "jira_api_token",
  "jira_oauth_token",
  "twilio_auth_token",
  "openai_api_key",
  "speech_to_text_api_key",
  "llm_api_key",
];

function credentialSummary(tenant) {
  const set = CREDENTIALS.filter((name) => tenant[name]);
  return set.length ? `${set.length} set` : "none set";
}

async function tenantsPage() {
  const { data: tenants } = await api("GET", "/v1/tenants");
  const rows = tenants.map((t) =>
    row(linkTo(`#/tenants/${encodeURIComponent(t.id)}`, t.id), t.name, t.jira_base_url, credentialSummary(t)),
  );
  page(
    "Tenants",
    canWrite() ? h("p", {}, linkTo("#/tenants/new", "New tenant")) : null,
    table("Tenants", ["Id", "Name", "Jira site", "Credentials"], rows),
  );
}

async function tenantPage(id) {
  const defs = state.fields.tenant;
  if (id === null) {
    if (!canWrite()) return page("New tenant", h("p", { text: "A read-only token cannot create tenants." }));
    const form = tenantForm(defs, null);
    submitting(form, "tenant", async () => {
      const body = readForm(form, defs, "tenant");
      if (!body) return;
      const { data } = await api("POST", "/v1/tenants", body);
      go(`#/tenants/${encodeURIComponent(data.id)}`, `Tenant ${data.id} created. Now set its credentials.`);
    });
    return page("New tenant", form);
  }
  const { data: tenant } = await api("GET", path("/v1/tenants/{}", id));
  const sections = [
    h("section", { "aria-labelledby": "settings-heading" }, h("h2", { id: "settings-heading", text: "Settings" }), tenantEditor(defs, tenant)),
    credentialsSection(tenant),
  ];
  if (canWrite()) sections.push(connectionSection(tenant), deleteTenantSection(tenant));
  page(`Tenant ${tenant.id}`, h("p", {}, linkTo("#/tenants", "All tenants")), ...sections);
}

function tenantForm(defs, tenant) {
  const editing = tenant !== null;
  const options = { disabled: !canWrite() };
  const fields = defs
    .filter((def) => !(editing && def.create_only))
    .map((def) => field("tenant", def, editing ? tenant[def.name] : def.default, options));
  return h(
    "form",
    { novalidate: true, class: "settings", "aria-label": editing ? `Settings of tenant ${tenant.id}` : "New tenant" },
    editing ? h("p", {}, `Id: ${tenant.id}`) : null,
    fields,
    formError(),
    canWrite() ? h("button", { type: "submit", text: editing ? "Save tenant" : "Create tenant" }) : null,
  );
}

function tenantEditor(defs, tenant) {
  const form = tenantForm(defs, tenant);
  if (!canWrite()) return form;
  const editable = defs.filter((def) => !def.create_only);
  submitting(form, "tenant", async () => {
    const body = readForm(form, editable, "tenant");
    if (!body) return;
    const changed = Object.fromEntries(
      Object.entries(body).filter(([name, value]) => JSON.stringify(value) !== JSON.stringify(tenant[name] ?? null)),
    );
    if (!Object.keys(changed).length) return formMessage(form, "Nothing changed.");
    await api("PATCH", path("/v1/tenants/{}", tenant.id), changed);
    go(`#/tenants/${encodeURIComponent(tenant.id)}`, `Tenant ${tenant.id} saved (${Object.keys(changed).join(", ")}).`);
  });
  return form;
}

function credentialsSection(tenant) {
  const list = h("div", { class: "credentials" });
  const render = (current) => {
    clear(list, state.fields.credentials.map((def) => credentialForm(current, def, render)));
  };
  render(tenant);
  return h(
    "section",
    { "aria-labelledby": "credentials-heading" },
    h("h2", { id: "credentials-heading", text: "Credentials" }),
    h("p", { class: "help", text: "Write-only: config-api never shows a credential, only whether it is set. Rotating sets it anew." }),
    list,
  );
}

function credentialForm(tenant, def, rerender) {
  const id = `credential-${def.name}`;
  const isSet = Boolean(tenant[def.name]);
  const status = h("p", { class: "credential-status", id: `${id}-status` }, `${def.label}: `, h("strong", { text: isSet ? `set (${tenant[def.name]})` : "not set" }));
  if (!canWrite()) return h("div", { class: "credential" }, status);
  const form = h(
    "form",
    { novalidate: true, class: "credential", "aria-label": def.label },
    status,
    h("div", { class: "field" },
      h("label", { for: id, text: `New ${def.label}` }),
      h("input", { id, name: "value", type: "password", autocomplete: "new-password", spellcheck: "false", "aria-describedby": `${id}-help ${id}-error` }),
      h("p", { id: `${id}-help`, class: "help", text: def.help }),
      h("p", { id: `${id}-error`, class: "error" })),
    formError(),
    h("button", { type: "submit", text: isSet ? `Rotate ${def.label}` : `Set ${def.label}` }),
  );
  submitting(form, "credential", async () => {
    const input = form.elements.namedItem("value");
    const value = input.value.trim();
    const prefix = `credential-${def.name}`;
    if (!value) return showErrors(form, "credential", [{ loc: ["body", def.name], msg: "Enter the new value." }]);
    try {
      const { data } = await api("PUT", path("/v1/tenants/{}/credentials/{}", tenant.id, def.name), { value });
      rerender(data);
      announce(`${def.label} ${isSet ? "rotated" : "set"}.`);
      document.getElementById(prefix)?.focus();
    } catch (error) {
      if (error instanceof ApiError && error.validation) {
        throw new ApiError(422, error.validation.map((d) => ({ ...d, loc: ["body", def.name] })));
      }
      throw error;
    }
  });
  return form;
}

function connectionSection(tenant) {
  const results = h("div", { id: "connection-results", "aria-live": "polite" });
  const run = button("Test connection", async () => {
    run.disabled = true;
    clear(results, h("p", { text: "Testing Jira, Twilio and the OpenAI-compatible server…" }));
    try {
      const { data } = await api("POST", path("/v1/tenants/{}/connection-test", tenant.id));
      const rows = data.results.map((r) =>
        row(r.provider, h("strong", { class: r.ok ? "ok" : "failed", text: r.ok ? "OK" : "Failed" }), display(r.status), h("pre", { text: r.answer ?? "" })),
      );
      clear(results, table("Connection test: each provider's own answer", ["Provider", "Result", "HTTP status", "Answer"], rows));
      announce(`Connection test done: ${data.results.map((r) => `${r.provider} ${r.ok ? "OK" : "failed"}`).join(", ")}.`);
    } catch (error) {
      clear(results, error instanceof ApiError && error.missingRoute ? missing("The connection test") : h("p", { class: "form-error", text: describe(error) }));
    } finally {
      run.disabled = false;
    }
  });
  return h(
    "section",
    { "aria-labelledby": "connection-heading" },
    h("h2", { id: "connection-heading", text: "Test connection" }),
    h("p", { class: "help", text: "Calls Jira, Twilio and the OpenAI-compatible server with this tenant's settings and credentials, and shows what each answered." }),
    run,
    results,
  );
}

function deleteTenantSection(tenant) {
  return h(
    "section",
    { "aria-labelledby": "delete-heading" },
    h("h2", { id: "delete-heading", text: "Delete tenant" }),
    confirming(
      "Delete tenant…",
      `Delete tenant ${tenant.id}, its lines and credentials, and destroy the keys of all its calls? This cannot be undone.`,
      `Delete ${tenant.id}`,
      async () => {
        const { data } = await api("DELETE", path("/v1/tenants/{}", tenant.id));
        go("#/tenants", `Tenant ${tenant.id} deleted with ${data.lines_deleted} line(s). Still to do at the providers: ${data.revocation_steps.join(" ")}`);
      },
    ),
  );
}

// ---- lines ------------------------------------------------------------------------------------

async function linesPage() {
  const { data: lines } = await api("GET", "/v1/lines");
  const rows = lines.map((l) =>
    row(linkTo(`#/lines/${encodeURIComponent(l.number)}`, l.number), l.tenant_id, l.service_desk_id, l.request_type_id, l.language, l.sms_enabled ? "yes" : "no"),
  );
  page(
    "Lines",
    canWrite() ? h("p", {}, linkTo("#/lines/new", "New line")) : null,
    table("Lines", ["Number", "Tenant", "Service desk", "Default request type", "Language", "SMS"], rows),
  );
}

async function linePage(number) {
  const defs = state.fields.line;
  const { data: tenants } = await api("GET", "/v1/tenants");
  const line = number === null ? null : (await api("GET", path("/v1/lines/{}", number))).data;
  if (line === null && !canWrite()) return page("New line", h("p", { text: "A read-only token cannot create lines." }));
  if (line === null && !tenants.length) return page("New line", h("p", {}, "Create a tenant first: ", linkTo("#/tenants/new", "New tenant")));
  const options = { disabled: !canWrite(), tenants: tenants.map((t) => t.id) };
  const fields = grouped(defs, (def) => {
    const value = line ? line[def.name] : def.default;
    const control = field("line", def, value, options);
    if (line && def.create_only) control.querySelector("input").readOnly = true;
    return control;
  });
  const form = h(
    "form",
    { novalidate: true, class: "settings", "aria-label": line ? `Settings of line ${line.number}` : "New line" },
    canWrite() ? h("p", { class: "help", text: "An empty field takes the default (the help says which); saving replaces the whole line." }) : null,
    fields,
    formError(),
    canWrite() ? h("button", { type: "submit", text: line ? "Save line" : "Create line" }) : null,
  );
  if (canWrite()) {
    submitting(form, "line", async () => {
      const body = readForm(form, defs, "line");
      if (!body) return;
      const target = body.number ?? "";
      if (!target) return showErrors(form, "line", [{ loc: ["body", "number"], msg: "Enter the line's number." }]);
      const { status } = await api("PUT", path("/v1/lines/{}", target), body);
      go("#/lines", `Line ${target} ${status === 201 ? "created" : "saved"}.`);
    });
  }
  const parts = [h("p", {}, linkTo("#/lines", "All lines")), form];
  if (line && canWrite()) {
    parts.push(
      h("section", { "aria-labelledby": "delete-line-heading" },
        h("h2", { id: "delete-line-heading", text: "Delete line" }),
        confirming("Delete line…", `Delete line ${line.number}? Calls to it will no longer be answered.`, `Delete ${line.number}`, async () => {
          await api("DELETE", path("/v1/lines/{}", line.number));
          go("#/lines", `Line ${line.number} deleted.`);
        })),
    );
  }
  page(line ? `Line ${line.number}` : "New line", ...parts);
}

// Consecutive fields of one group in a fieldset with the group's legend.
function grouped(defs, render) {
  const sets = [];
  for (const def of defs) {
    if (!sets.length || sets[sets.length - 1].group !== def.group) sets.push({ group: def.group, defs: [] });
    sets[sets.length - 1].defs.push(def);
  }
  return sets.map(({ group, defs: members }) =>
    group ? h("fieldset", {}, h("legend", { text: group }), members.map(render)) : members.map(render));
}

// ---- calls ------------------------------------------------------------------------------------

const STAGES = { received: "Received", transcribed: "Transcribed", analyzed: "Analysed", request: "Request", sms: "SMS" };

function screenedText(call) {
  if (!call.screened) return null;
  return call.screened_out ? `${call.screened}: no request` : call.screened;
}

function stageSummary(call) {
  return (call.stages || []).map((s) => `${STAGES[s.name] || s.name}: ${s.state}`).join(" → ");
}

async function callsPage() {
  const { data: tenants } = await api("GET", "/v1/tenants");
  const filter = h("form", { novalidate: true, class: "filters", "aria-label": "Filter calls" },
    h("div", { class: "field" },
      h("label", { for: "calls-tenant", text: "Tenant" }),
      h("select", { id: "calls-tenant", name: "tenant_id" }, h("option", { value: "", text: "(all)" }), tenants.map((t) => h("option", { value: t.id, text: t.id })))),
    h("button", { type: "submit", text: "Show calls" }));
  const list = h("div", { id: "calls-list" });
  page("Calls", filter, list);
  const load = async (before, append) => {
    const params = new URLSearchParams({ limit: "50" });
    const tenant = filter.elements.namedItem("tenant_id").value;
    if (tenant) params.set("tenant_id", tenant);
    if (before) params.set("before", before);
    let data;
    try {
      ({ data } = await api("GET", `/v1/calls?${params}`));
    } catch (error) {
      if (error instanceof ApiError && error.missingRoute) return clear(list, missing("The calls list"));
      throw error;
    }
    const rows = data.calls.map((c) =>
      row(linkTo(`#/calls/${encodeURIComponent(c.call_sid)}`, c.call_sid), c.tenant_id, display(c.line), when(c.received_at), display(c.request_key), display(c.priority), display(c.triage), display(screenedText(c)), stageSummary(c), c.error ? h("span", { class: "failed", text: display(c.error) }) : "—"),
    );
    const body = append ? list.querySelector("tbody") : null;
    if (body && rows.length) body.append(...rows);
    else clear(list, table("Calls, newest first", ["Call", "Tenant", "Line", "Received", "Request", "Priority", "Triage", "Screened", "Progress", "Error"], rows));
    list.querySelector(".more")?.remove();
    if (data.next) list.append(button("Older calls", () => load(data.next, true), { class: "more secondary" }));
  };
  submitting(filter, "calls", () => load(null, false));
  await load(null, false);
}

async function callPage(sid) {
  let call;
  try {
    ({ data: call } = await api("GET", path("/v1/calls/{}", sid)));
  } catch (error) {
    if (error instanceof ApiError && error.missingRoute) return page(`Call ${sid}`, missing("The calls API"));
    throw error;
  }
  const facts = [
    ["Tenant", call.tenant_id], ["Line", call.line], ["Received", when(call.received_at)],
    ["Request", call.request_key], ["Priority", call.priority], ["Intent", call.intent],
    ["Language", call.language], ["Triage", call.triage], ["SMS", call.sms_state],
    ["Call status", call.call_status], ["Duration (seconds)", call.duration_seconds], ["Error", call.error],
    ["Screened", screenedText(call)],
  ];
  const stages = h("ol", { class: "stages" }, (call.stages || []).map((s) =>
    h("li", { class: `stage ${s.state}` },
      h("strong", { text: STAGES[s.name] || s.name }), ` — ${s.state}`, s.at ? [" at ", when(s.at)] : null,
      s.detail ? h("span", { class: "detail" }, ` (${display(s.detail)})`) : null)));
  const parts = [
    h("p", {}, linkTo("#/calls", "All calls")),
    h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", { text: k }), h("dd", {}, v instanceof Node ? v : display(v))])),
    h("section", { "aria-labelledby": "progress-heading" }, h("h2", { id: "progress-heading", text: "Progress" }), stages),
    deadLetters(call),
  ];
  if (canWrite()) parts.push(transcriptSection(call));
  page(`Call ${call.call_sid}`, ...parts);
}

function deadLetters(call) {
  const letters = call.dead_letters || [];
  const rows = letters.map((d) =>
    row(display(d.group), display(d.event_type), display(d.reason), when(d.at),
      d.replayed_at ? ["replayed ", when(d.replayed_at), d.replayed_by ? ` by ${d.replayed_by}` : ""] : "not replayed",
      canWrite() ? button("Replay", async (event) => {
        event.target.disabled = true;
        try {
          await api("POST", path("/v1/dead-letters/{}/replay", d.id));
          announce(`Dead letter ${d.id} replayed.`);
          event.target.textContent = "Replayed";
        } catch (error) {
          alertError(error instanceof ApiError && error.missingRoute ? "Replay is not available on this config-api yet (404)." : describe(error));
          event.target.disabled = false;
        }
      }, { "aria-label": `Replay dead letter ${d.id}` }) : "—"),
  );
  return h("section", { "aria-labelledby": "dead-heading" }, h("h2", { id: "dead-heading", text: "Dead letters" }),
    table("Dead letters of this call", ["Group", "Event", "Reason", "At", "Replayed", "Action"], rows));
}

function transcriptSection(call) {
  const holder = h("div", { id: "transcript" });
  const show = button("Show transcript", async () => {
    if (holder.childElementCount) {
      clear(holder);
      show.textContent = "Show transcript";
      show.setAttribute("aria-expanded", "false");
      return;
    }
    try {
      const { data } = await api("GET", path("/v1/calls/{}/transcript", call.call_sid));
      clear(holder, h("pre", { class: "transcript", text: data.text ?? "" }));
      show.textContent = "Hide transcript";
      show.setAttribute("aria-expanded", "true");
    } catch (error) {
      clear(holder, h("p", { class: "form-error", text: describe(error) }));
    }
  }, { "aria-expanded": "false", "aria-controls": "transcript" });
  return h("section", { "aria-labelledby": "transcript-heading" }, h("h2", { id: "transcript-heading", text: "Transcript" }),
    h("p", { class: "help", text: "The caller's words: personal data. Shown only on request, and only to admin-scope tokens." }), show, holder);
}

// ---- tokens -----------------------------------------------------------------------------------

async function tokensPage() {
  const { data: tokens } = await api("GET", "/v1/admin/tokens");
  const rows = tokens.map((t) =>
    row(t.name, t.scope, t.source, when(t.created_at), display(t.created_by), when(t.last_used_at),
      t.revoked_at ? ["revoked ", when(t.revoked_at)] : "active",
      canWrite() && t.source === "api" && !t.revoked_at
        ? confirming("Revoke", `Revoke token ${t.name}? It is refused from its next request on.`, `Revoke ${t.name}`, async () => {
          await api("DELETE", path("/v1/admin/tokens/{}", t.name));
          go("#/tokens", `Token ${t.name} revoked.`);
        })
        : "—"),
  );
  const parts = [table("Admin tokens", ["Name", "Scope", "Source", "Created", "By", "Last used", "State", "Action"], rows)];
  if (canWrite()) parts.unshift(newTokenSection());
  page("Tokens", ...parts);
}

function newTokenSection() {
  const defs = [
    { name: "name", label: "Name", type: "text", required: true, help: "Who holds the token (the audit log's actor): lowercase letters, digits, '.', '_' or '-'." },
    { name: "scope", label: "Scope", type: "select", options: ["admin", "read-only"], help: "admin: everything; read-only: may look at everything, change nothing." },
  ];
  const form = h("form", { novalidate: true, "aria-label": "New token" }, defs.map((d) => field("token", d, d.options?.[0])), formError(), h("button", { type: "submit", text: "Create token" }));
  submitting(form, "token", async () => {
    const body = readForm(form, defs, "token");
    if (!body) return;
    const { data } = await api("POST", "/v1/admin/tokens", body);
    state.flash = h("div", { class: "secret", id: "new-token" },
      h("p", {}, `Token ${data.name} (${data.scope}) created. Copy it now: it is shown this once and cannot be shown again.`),
      h("label", { for: "new-token-secret", text: `Token ${data.name}` }),
      h("input", { id: "new-token-secret", type: "text", readonly: true, value: data.token, spellcheck: "false" }));
    announce(`Token ${data.name} created; it is shown once on this page.`);
    await route(true);
  });
  return h("section", { "aria-labelledby": "new-token-heading" }, h("h2", { id: "new-token-heading", text: "New token" }), form);
}

// ---- audit ------------------------------------------------------------------------------------

async function auditPage() {
  const defs = [
    { name: "actor", label: "Actor", type: "text", help: "Only this token's entries (its name)." },
    { name: "action", label: "Action", type: "text", help: "e.g. tenant.create, or a family like credential.*" },
    { name: "tenant_id", label: "Tenant", type: "text", help: "Only entries about this tenant, its lines and credentials." },
    { name: "outcome", label: "Outcome", type: "select", options: ["", "success", "refused", "error"], empty: "(any)", help: "Empty: every outcome." },
  ];
  const form = h("form", { novalidate: true, class: "filters", "aria-label": "Filter the audit log" }, defs.map((d) => field("audit", d, "")), formError(), h("button", { type: "submit", text: "Show entries" }));
  const list = h("div", { id: "audit-list" });
  page("Audit log", form, list);
  const load = async (before) => {
    const params = new URLSearchParams({ limit: "100" });
    const body = readForm(form, defs, "audit");
    for (const [k, v] of Object.entries(body || {})) if (v) params.set(k, v);
    if (before) params.set("before", String(before));
    const { data } = await api("GET", `/v1/audit?${params}`);
    const rows = data.items.map((e) => row(when(e.at), e.actor, e.action, display(e.target), e.outcome, String(e.status_code), display(e.details)));
    clear(list, table("Audit entries, newest first", ["At", "Actor", "Action", "Target", "Outcome", "Status", "Details"], rows));
    if (data.next_before) list.append(button("Older entries", () => load(data.next_before), { class: "secondary" }));
  };
  submitting(form, "audit", () => load(null));
  await load(null);
}

// ---- start ------------------------------------------------------------------------------------

async function start() {
  setUpSignIn();
  window.addEventListener("hashchange", () => route(true));
  const token = storedToken();
  if (token) {
    try {
      await signIn(token);
      await route(false);
      return;
    } catch {
      forgetToken();
    }
  }
  document.getElementById("token").focus();
}

start();
