// DOM helpers: elements built node by node (never from HTML strings), fields with their help and
// errors bound for assistive technology, and the API's 422 answers shown next to their fields.

export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "value") el.value = value;
    else if (key === "checked") el.checked = Boolean(value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function announce(message) {
  const status = document.getElementById("status");
  status.textContent = "";
  // a fresh text node makes screen readers read a repeated message again
  window.setTimeout(() => {
    status.textContent = message;
  }, 30);
}

export function alertError(message) {
  document.getElementById("alert").textContent = message || "";
}

export function when(at) {
  if (!at) return "";
  const moment = new Date(at);
  if (Number.isNaN(moment.getTime())) return String(at);
  return h("time", { datetime: moment.toISOString() }, moment.toISOString().replace("T", " ").slice(0, 19) + " UTC");
}

export function display(value) {
  if (value === null || value === undefined || value === "") return "—";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

export function table(caption, columns, rows) {
  return h(
    "table",
    {},
    h("caption", { text: caption }),
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", text: c })))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: columns.length, text: "None." }))),
  );
}

export function row(...cells) {
  return h("tr", {}, cells.map((c) => h("td", {}, c)));
}

// ---- form fields ----------------------------------------------------------------------------

function controlFor(def, id, value, options) {
  const described = `${id}-help ${id}-error`;
  const common = { id, name: def.name, "aria-describedby": described, disabled: options.disabled };
  switch (def.type) {
    case "checkbox":
      return h("input", { ...common, type: "checkbox", checked: Boolean(value) });
    case "select":
    case "tenant": {
      const choices = def.type === "tenant" ? options.tenants || [] : def.options;
      const select = h(
        "select",
        common,
        choices.map((choice) => h("option", { value: choice, text: choice === "" ? def.empty || "(automatic)" : choice })),
      );
      select.value = value === null || value === undefined ? choices[0] ?? "" : String(value);
      return select;
    }
    case "textarea":
    case "list":
    case "map":
    case "json":
      return h("textarea", { ...common, rows: def.type === "json" ? 4 : 3, value: asText(def, value) });
    case "number":
      return h("input", { ...common, type: "number", min: def.min, max: def.max, step: def.step, inputmode: def.step ? "decimal" : "numeric", value: asText(def, value) });
    default:
      return h("input", { ...common, type: "text", spellcheck: "false", value: asText(def, value), "aria-required": def.required ? "true" : undefined });
  }
}

function asText(def, value) {
  if (value === null || value === undefined) return "";
  if (def.type === "list") return value.join("\n");
  if (def.type === "map") return Object.entries(value).map(([k, v]) => `${k}=${v}`).join("\n");
  if (def.type === "json") return JSON.stringify(value, null, 2);
  return String(value);
}

// One field: its label, control, help text and the place its error is shown.
export function field(prefix, def, value, options = {}) {
  const id = `${prefix}-${def.name}`;
  const control = controlFor(def, id, value, options);
  const label = h("label", { for: id, text: def.label + (def.required ? " (required)" : "") });
  const parts =
    def.type === "checkbox" ? [h("div", { class: "check" }, control, label)] : [label, control];
  return h(
    "div",
    { class: "field", "data-field": def.name },
    parts,
    h("p", { id: `${id}-help`, class: "help", text: def.help }),
    h("p", { id: `${id}-error`, class: "error" }),
  );
}

// The value of one field as the API wants it; undefined leaves it out (the API's default).
export function readField(form, def) {
  const el = form.elements.namedItem(def.name);
  if (!el) return { value: undefined };
  if (def.type === "checkbox") return { value: el.checked };
  const raw = el.value.trim();
  if (raw === "") return { value: def.nullable ? null : undefined };
  switch (def.type) {
    case "number":
      return { value: /^-?\d+(\.\d+)?$/.test(raw) ? Number(raw) : raw };
    case "retention":
      return { value: /^\d+$/.test(raw) ? Number(raw) : raw };
    case "list":
      return { value: raw.split("\n").map((s) => s.trim()).filter(Boolean) };
    case "map":
      return readMap(raw);
    case "json":
      try {
        return { value: JSON.parse(raw) };
      } catch {
        return { error: "is not valid JSON" };
      }
    default:
      return { value: def.type === "textarea" || def.type === "select" ? el.value : raw };
  }
}

function readMap(raw) {
  const value = {};
  const lines = raw.split("\n").map((s) => s.trim()).filter(Boolean);
  for (const [index, line] of lines.entries()) {
    const [key, id, extra] = line.split("=").map((s) => s.trim());
    if (!key || !id || extra !== undefined) return { error: `line ${index + 1}: write intent=id, e.g. incident=41` };
    value[key] = id;
  }
  return { value };
}

// Read every field; client-side problems (bad JSON, a bad intent line) are shown like the API's.
export function readForm(form, defs, prefix) {
  clearErrors(form);
  const body = {};
  const problems = [];
  for (const def of defs) {
    const { value, error } = readField(form, def);
    if (error) problems.push({ loc: ["body", def.name], msg: error });
    else if (value !== undefined) body[def.name] = value;
  }
  if (problems.length) {
    showErrors(form, prefix, problems);
    return null;
  }
  return body;
}

export function clearErrors(form) {
  form.querySelectorAll(".error").forEach((p) => {
    p.textContent = "";
  });
  form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
}

function readable(msg) {
  return String(msg).replace(/^Value error, /, "");
}

// The field a pydantic error is about: its loc is ["body"|"path"|"query", field, ...].
export function fieldOf(loc) {
  if (!Array.isArray(loc) || loc.length < 2) return null;
  return ["body", "path", "query"].includes(loc[0]) ? String(loc[1]) : null;
}

// Show each error next to its field; the rest in the form's own message. Focus the first field.
export function showErrors(form, prefix, detail) {
  const general = [];
  let first = null;
  for (const item of detail) {
    const name = fieldOf(item.loc);
    const control = name ? form.querySelector(`#${CSS.escape(`${prefix}-${name}`)}`) : null;
    if (!control) {
      general.push(readable(item.msg));
      continue;
    }
    const where = form.querySelector(`#${CSS.escape(`${prefix}-${name}-error`)}`);
    const nested = item.loc.length > 2 ? ` (${item.loc.slice(2).join(".")})` : "";
    where.textContent = [where.textContent, readable(item.msg) + nested].filter(Boolean).join("; ");
    control.setAttribute("aria-invalid", "true");
    first = first || control;
  }
  formMessage(form, general.join("; "));
  if (first) first.focus();
  return first;
}

export function formMessage(form, message) {
  const where = form.querySelector(".form-error");
  if (where) where.textContent = message || "";
}

export function formError() {
  return h("p", { class: "form-error", role: "alert" });
}
