// Small DOM and fetch helpers every module of the page shares. Data from the server goes into the page
// with textContent / DOM nodes (never innerHTML); server-rendered HTML is parsed with DOMParser.
"use strict";

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

export class ApiError extends Error {
  constructor(message, status, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

// fetch and decode: JSON or text; an error answer throws ApiError with the server's message
export async function api(path, options = {}) {
  const res = await fetch(path, options);
  const type = res.headers.get("content-type") || "";
  const body = type.includes("json") ? await res.json() : await res.text();
  if (!res.ok) {
    const msg = body && body.message ? body.message : `${res.status} ${res.statusText}`;
    throw new ApiError(msg, res.status, body);
  }
  return body;
}

// the page's CSRF token (the <meta name=csrf-token> of the page: the session's), sent with every change
export function csrfToken() {
  const m = document.querySelector('meta[name="csrf-token"]');
  return m ? m.getAttribute("content") || "" : "";
}

// whether the page acts for a listener (logged in, or the server's local one): else no state is asked for
export function hasListener() {
  const m = document.querySelector('meta[name="listener"]');
  return !m || m.getAttribute("content") !== "no";
}

// a change through the JSON API: the body as JSON, the CSRF header
export function send(method, path, body) {
  const headers = { "X-CSRF-Token": csrfToken() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  return api(path, { method, headers, body: body !== undefined ? JSON.stringify(body) : undefined });
}

// a server-rendered HTML answer as a document (an error page's message, when it is one)
export async function fetchDocument(url, options = {}) {
  const res = await fetch(url, { ...options, headers: { Accept: "text/html", ...(options.headers || {}) } });
  const type = res.headers.get("content-type") || "";
  if (!type.includes("text/html")) return { res, doc: null };
  const doc = new DOMParser().parseFromString(await res.text(), "text/html");
  return { res, doc };
}

export function errorMessage(doc, res) {
  const p = doc && doc.querySelector(".error-page .error");
  return p ? p.textContent : `${res.status} ${res.statusText}`;
}

// a track described by the nearest element carrying data-id and data-title (a list row, the track page)
export function trackOf(node) {
  const row = node.closest("[data-id][data-title]");
  if (!row) return null;
  return {
    id: Number(row.dataset.id),
    title: row.dataset.title || "",
    artist: row.dataset.artist || "",
    album: row.dataset.album || "",
  };
}

// the tracks of a list section, in order
export function tracksOf(section) {
  return $$("tr.track[data-id], li.track[data-id]", section).map(trackOf);
}

export function fmtTime(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "0:00";
  const s = Math.floor(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

// whether a key press belongs to a field the user is typing in
export function typing(target) {
  if (!target || !(target instanceof Element)) return false;
  if (target.isContentEditable) return true;
  const tag = target.tagName;
  if (tag === "TEXTAREA" || tag === "SELECT") return true;
  if (tag !== "INPUT") return false;
  return !["button", "checkbox", "radio", "range", "submit", "reset", "file", "color"].includes(target.type);
}
