// A small renderer for our own OpenAPI 3.1 document, served by the binary itself so the
// docs work offline and leak nothing to a CDN. It is a file of its own, not an inline
// script, so that the page's Content-Security-Policy can forbid inline script.
(async function () {
  const el = (tag, attrs, ...kids) => {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, v);
    for (const k of kids) n.append(k);
    return n;
  };
  const spec = await (await fetch("/openapi.json")).json();
  document.getElementById("title").textContent = spec.info.title + " " + spec.info.version;
  document.getElementById("desc").textContent = spec.info.description || "";
  const schemas = (spec.components && spec.components.schemas) || {};
  const ref = (r) => r.replace("#/components/schemas/", "");
  const typeText = (s) => {
    const t = Array.isArray(s.type) ? s.type.join(" | ") : s.type || "object";
    return s.format ? t + " (" + s.format + ")" : t;
  };
  const schemaText = (s, depth = 0) => {
    if (!s) return "";
    if (s.$ref) {
      const name = ref(s.$ref), def = schemas[name];
      if (!def || depth > 2) return name;
      return schemaText(def, depth + 1);
    }
    if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(" | ");
    if (s.type === "array") return "[" + schemaText(s.items, depth + 1) + "]";
    if (s.properties) {
      const pad = "  ".repeat(depth + 1);
      const lines = Object.entries(s.properties).map(([k, v]) => pad + k + ": " + schemaText(v, depth + 1));
      return "{\n" + lines.join(",\n") + "\n" + "  ".repeat(depth) + "}";
    }
    return typeText(s);
  };
  // body shows a request body or response: its media type, then its schema.
  const body = (title, b) => {
    if (!b || !b.content) return [];
    const [media, m] = Object.entries(b.content)[0];
    return [el("h4", {}, title + " ", el("code", {}, media)), el("pre", {}, schemaText(m.schema))];
  };
  const byTag = {};
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const [verb, op] of Object.entries(item)) {
      const tag = (op.tags && op.tags[0]) || "Other";
      (byTag[tag] = byTag[tag] || []).push({ path, verb: verb.toUpperCase(), op });
    }
  }
  const nav = document.getElementById("nav"), ops = document.getElementById("ops");
  for (const t of spec.tags || []) {
    const list = byTag[t.name];
    if (!list) continue;
    nav.append(el("h3", {}, t.name));
    ops.append(el("h2", { class: "tag" }, t.name), el("p", { class: "muted" }, t.description || ""));
    for (const { path, verb, op } of list) {
      const id = op.operationId;
      nav.append(el("a", { href: "#" + id }, verb + " " + path));
      const sec = el("section", { class: "op", id });
      const head = el("h2", {}, el("span", { class: "verb " + verb }, verb), el("code", {}, path));
      if (op.security && op.security.length === 0) {
        head.append(el("span", { class: "public" }, "no credential needed"));
      } else if (op.security) {
        const scopes = op.security.flatMap((r) => Object.values(r).flat());
        if (scopes.length) head.append(el("span", { class: "muted scopes" }, "API-key scopes: " + scopes.join(", ")));
      }
      sec.append(head, el("p", {}, op.summary || ""), el("p", { class: "muted" }, op.description || ""));
      const params = op.parameters || [];
      if (params.length) {
        const t = el("table", {}, el("tr", {}, el("th", {}, "parameter"), el("th", {}, "in"), el("th", {}, "type"), el("th", {}, "description")));
        for (const p of params) t.append(el("tr", {}, el("td", {}, el("code", {}, p.name)), el("td", {}, p.in), el("td", {}, schemaText(p.schema)), el("td", {}, p.description || "")));
        sec.append(t);
      }
      sec.append(...body("Request body", op.requestBody));
      sec.append(...body("Response", op.responses && op.responses["200"]));
      const errors = Object.keys(op.responses || {}).filter((c) => c !== "200" && c !== "default");
      if (errors.length) sec.append(el("p", { class: "muted" }, "Errors: " + errors.join(", ") + ", each with a {code, message, details} body."));
      ops.append(sec);
    }
  }
})().catch((e) => { document.getElementById("desc").textContent = "Could not load /openapi.json: " + e; });
