// musicindex web page: navigation that keeps the player playing, likes, track lists and their actions,
// pickers, the map, the status refresh, M3U export, query by example and the token-protected actions.
// Plain ES modules, no build step, no outside resource. Data from the server goes into the page with
// textContent / DOM nodes only; server-rendered HTML (pages, fragments) is parsed with DOMParser. The API
// token travels only in the Authorization header of requests this script makes (kept in sessionStorage).
"use strict";

import { $, $$, api, el, errorMessage, fetchDocument, trackOf, tracksOf } from "./dom.js";
import * as player from "./player.js";
import { queueStore } from "./queue-store.js";
import { clearLikes, fetchLikes, initPlaylistEditor, likesReady, loadLikes, refreshLikeButtons, toggleLike } from "./library.js";

document.documentElement.classList.add("js");

// ------------------------------------------------------------------ buttons of tracks and lists (delegated)
document.addEventListener("click", (ev) => {
  const b = ev.target.closest("button");
  if (!b) return;
  const cls = b.classList;
  if (cls.contains("like")) toggleLike("liked", b, trackOf(b));
  else if (cls.contains("dislike")) toggleLike("disliked", b, trackOf(b));
  else if (cls.contains("play") && trackOf(b)) player.playNow(trackOf(b));
  else if (cls.contains("play-next") && trackOf(b)) player.playNext(trackOf(b));
  else if (cls.contains("enqueue") && trackOf(b)) player.enqueue([trackOf(b)]);
  else if (cls.contains("radio") && trackOf(b)) {
    const t = trackOf(b);
    player.startRadio({ liked: [t.id], label: `from “${t.title}”`, first: t });
  } else if (cls.contains("play-all")) player.playAll(tracksOf(b.closest("section.list")));
  else if (cls.contains("add-all")) player.enqueue(tracksOf(b.closest("section.list")));
  else if (b.id === "radio-likes") {
    const likes = loadLikes();
    const liked = Object.keys(likes.liked).map(Number);
    if (!liked.length) return;
    player.startRadio({ liked, disliked: Object.keys(likes.disliked).map(Number), label: "your likes" });
  }
});

// ------------------------------------------------------------------ M3U export
const BASE_KEY = "musicindex.m3uBase";

function refreshExportLinks() {
  const base = localStorage.getItem(BASE_KEY) || "";
  for (const input of $$(".m3u-base")) if (document.activeElement !== input) input.value = base;
  for (const link of $$("a.m3u-link")) {
    if (!link.dataset.href) link.dataset.href = link.getAttribute("href");
    link.href = link.dataset.href + (base ? `&base=${encodeURIComponent(base)}` : "");
  }
}

document.addEventListener("input", (ev) => {
  if (ev.target.classList && ev.target.classList.contains("m3u-base")) {
    localStorage.setItem(BASE_KEY, ev.target.value.trim());
    refreshExportLinks();
  }
});

// ------------------------------------------------------------------ navigation: swap <main>, keep the player
// Links and GET forms to pages of this site are fetched and their <main> replaces this one; history
// entries are pushed, back/forward swap again. Anything else (the API, downloads, other sites, a link
// marked data-reload) is left to the browser, and so is every page when the script does not run.
let navSeq = 0;
const cleanups = [];

function isPage(url) {
  if (url.origin !== location.origin) return false;
  const p = url.pathname;
  if (p === "/api/docs") return true;
  return !["/api/", "/static/", "/fragments/"].some((x) => p.startsWith(x)) && p !== "/favicon.ico";
}

export async function navigate(href, { push = true, replace = false, scroll = null, method = "GET", body = undefined } = {}) {
  const url = new URL(href, location.href);
  const seq = ++navSeq;
  const main = $("#content");
  main.setAttribute("aria-busy", "true");
  let res;
  let doc;
  try {
    ({ res, doc } = await fetchDocument(url.href, method === "GET" ? {} : { method, body }));
  } catch (e) {
    location.assign(url.href);
    return;
  }
  if (seq !== navSeq) return;
  const fresh = doc && doc.querySelector("main#content");
  if (!fresh) {
    if (method === "GET") location.assign(url.href);
    return;
  }
  if (push) history.replaceState({ ...(history.state || {}), scroll: window.scrollY }, "");
  leavePage();
  main.replaceWith(document.adoptNode(fresh));
  document.title = doc.title;
  document.body.dataset.page = doc.body.dataset.page || "";
  const token = doc.querySelector('meta[name="csrf-token"]');
  const mine = document.querySelector('meta[name="csrf-token"]');
  if (token && mine) mine.setAttribute("content", token.getAttribute("content")); // a login starts a new session
  const who = doc.querySelector('meta[name="listener"]');
  const whoMine = document.querySelector('meta[name="listener"]');
  if (who && whoMine) whoMine.setAttribute("content", who.getAttribute("content"));
  if (method !== "GET") {
    fetchLikes(); // logged in or out: whose likes changed
    queueStore.reset();
  }
  const nav = doc.querySelector("header.top nav");
  if (nav) $("header.top nav").replaceWith(document.adoptNode(nav));
  const q = doc.querySelector("#q");
  if (q && document.activeElement !== $("#q")) $("#q").value = q.value;
  const final = new URL(res.url || url.href);
  final.hash = url.hash;
  if (push) history.pushState({ scroll: 0 }, "", final.href);
  else if (replace) history.replaceState({ scroll: 0 }, "", final.href);
  enterPage();
  const target = url.hash ? document.getElementById(decodeURIComponent(url.hash.slice(1))) : null;
  if (scroll !== null) window.scrollTo(0, scroll);
  else if (target) target.scrollIntoView();
  else window.scrollTo(0, 0);
  $("#content").focus({ preventScroll: true }); // screen readers start reading the new content
}

document.addEventListener("click", (ev) => {
  if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  const a = ev.target.closest("a[href]");
  if (!a || a.target || a.hasAttribute("download") || a.hasAttribute("data-reload")) return;
  const url = new URL(a.href, location.href);
  if (!isPage(url)) return;
  if (url.pathname === location.pathname && url.search === location.search && url.hash) return; // same page
  ev.preventDefault();
  navigate(url.href);
});

document.addEventListener("submit", (ev) => {
  const form = ev.target;
  if (ev.defaultPrevented || form.hasAttribute("data-reload")) return;
  const action = new URL(form.getAttribute("action") || location.href, location.href);
  if (!isPage(action)) return;
  if ((form.getAttribute("method") || "get").toLowerCase() === "post") {
    // login, logout, password, playlists: posted by script so that the player plays on; the answer (or the page
    // it redirects to) is swapped in like any page
    ev.preventDefault();
    navigate(action.href, { method: "POST", body: new URLSearchParams(new FormData(form, ev.submitter)) });
    return;
  }
  ev.preventDefault();
  action.search = new URLSearchParams(new FormData(form, ev.submitter)).toString();
  navigate(action.href);
});

window.addEventListener("popstate", (ev) => {
  navigate(location.href, { push: false, scroll: ev.state && Number.isFinite(ev.state.scroll) ? ev.state.scroll : 0 });
});

// ------------------------------------------------------------------ recommend page
async function initRecommend() {
  await likesReady();
  if (document.body.dataset.page !== "recommend") return;
  const likes = loadLikes();
  const params = new URLSearchParams(location.search);
  const liked = Object.keys(likes.liked).slice(-100); // the page takes at most 100 of each
  const disliked = Object.keys(likes.disliked).slice(-100);
  if (!params.has("liked") && liked.length) {
    params.delete("disliked");
    for (const id of liked) params.append("liked", id);
    for (const id of disliked) params.append("disliked", id);
    navigate(`/recommend?${params.toString()}`, { push: false, replace: true });
    return;
  }
  const fields = $("#seed-fields");
  if (fields) {
    fields.replaceChildren(
      ...liked.map((id) => el("input", { type: "hidden", name: "liked", value: id })),
      ...disliked.map((id) => el("input", { type: "hidden", name: "disliked", value: id })),
    );
  }
  const radio = $("#radio-likes");
  if (radio) radio.disabled = !liked.length;
  const clear = $("#clear-likes");
  if (clear)
    clear.addEventListener("click", () => {
      clearLikes().then(() => navigate("/recommend"));
    });
}

// ------------------------------------------------------------------ track pickers (playlist builder)
// A combobox: type, ↓/↑ to move through the matches, Enter to pick, Escape to close. Enter on a typed
// name that was not picked resolves it (one match, or one exact title) or says what matched.
const nameOf = (t) => t.title || (t.path || "").split("/").pop() || `track ${t.id}`; // path: the operator's only

function initPicker(picker) {
  const q = $(".pick-q", picker);
  const hidden = $("input[type=hidden]", picker);
  const list = $(".pick-results", picker);
  const msg = $(".pick-msg", picker);
  const label = { start: "From", end: "To", add: "Add" }[picker.dataset.for] || picker.dataset.for;
  let items = [];
  let active = -1;
  let timer = null;
  let seq = 0;

  const close = () => {
    list.replaceChildren();
    items = [];
    active = -1;
    q.setAttribute("aria-expanded", "false");
    q.removeAttribute("aria-activedescendant");
  };
  const choose = (t) => {
    hidden.value = String(t.id);
    q.value = nameOf(t);
    close();
    msg.textContent = `${label}: ${nameOf(t)}${t.artist ? ` — ${t.artist}` : ""}`;
    picker.dispatchEvent(new CustomEvent("picked", { detail: { ...t, title: nameOf(t) } }));
  };
  const setActive = (i) => {
    active = i;
    $$("li", list).forEach((li, j) => {
      li.classList.toggle("active", j === i);
      li.setAttribute("aria-selected", String(j === i));
    });
    const li = list.children[i];
    if (li) {
      q.setAttribute("aria-activedescendant", li.id);
      li.scrollIntoView({ block: "nearest" });
    }
  };
  const show = (found) => {
    items = found;
    active = -1;
    list.replaceChildren(...items.map((t, i) => {
      const li = el("li", { id: `${list.id}-${i}`, role: "option", "aria-selected": "false", "data-id": String(t.id) },
        nameOf(t), " ", el("small", { text: [t.artist, t.album].filter(Boolean).join(" — ") }));
      li.addEventListener("mousedown", (ev) => ev.preventDefault()); // keep the focus in the box
      li.addEventListener("click", () => choose(t));
      return li;
    }));
    q.setAttribute("aria-expanded", String(items.length > 0));
  };
  const search = async (text) => {
    const mine = ++seq;
    const res = await api(`/api/tracks?q=${encodeURIComponent(text)}&limit=8`);
    return mine === seq ? res : null;
  };
  const lookup = async () => {
    const text = q.value.trim();
    if (!text) {
      close();
      msg.textContent = "";
      return;
    }
    try {
      const res = await search(text);
      if (!res) return;
      show(res.items);
      msg.textContent = res.items.length
        ? `${res.candidates} match${res.candidates === 1 ? "es" : ""}: ↓ and Enter to pick`
        : `no track matches “${text}”`;
    } catch (e) {
      close();
      msg.textContent = e.message;
    }
  };
  const resolve = async () => {
    const text = q.value.trim();
    try {
      const res = await search(text);
      if (!res) return;
      const exact = res.items.filter((t) => nameOf(t).toLowerCase() === text.toLowerCase());
      if (res.items.length === 1 || exact.length === 1) {
        choose(exact[0] || res.items[0]);
        return;
      }
      show(res.items);
      msg.textContent = res.items.length
        ? `${res.candidates} tracks match “${text}”: pick one with ↓ and Enter`
        : `no track matches “${text}”: try fewer or other words`;
    } catch (e) {
      msg.textContent = e.message;
    }
  };

  q.addEventListener("input", () => {
    hidden.value = "";
    clearTimeout(timer);
    timer = setTimeout(lookup, 150);
  });
  q.addEventListener("keydown", (ev) => {
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      ev.preventDefault();
      if (!items.length) {
        lookup();
        return;
      }
      const step = ev.key === "ArrowDown" ? 1 : -1;
      setActive(active < 0 && step < 0 ? items.length - 1 : (active + step + items.length) % items.length);
    } else if (ev.key === "Enter") {
      if (active >= 0 && items[active]) {
        ev.preventDefault();
        choose(items[active]);
      } else if (!hidden.value && q.value.trim()) {
        ev.preventDefault();
        clearTimeout(timer);
        resolve();
      }
    } else if (ev.key === "Escape" && items.length) {
      ev.preventDefault();
      close();
    }
  });
  q.addEventListener("blur", () => setTimeout(close, 100));
}

// ------------------------------------------------------------------ query by example (upload)
function initUpload() {
  const form = $("#upload-form");
  if (!form) return;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const file = $("#upload-file").files[0];
    const out = $("#upload-result");
    if (!file) return;
    const space = $("select[name=space]", form).value;
    out.replaceChildren(el("p", { class: "note", text: `analysing ${file.name} …` }));
    const qs = new URLSearchParams({ k: "10", filename: file.name });
    if (space) qs.set("space", space);
    try {
      const { res, doc } = await fetchDocument(`/fragments/similar-to-file?${qs}`, {
        method: "POST", body: file, headers: { "Content-Type": "application/octet-stream" },
      });
      if (!res.ok || !doc) {
        out.replaceChildren(el("p", { class: "error", text: `${file.name}: ${errorMessage(doc, res)}` }));
        return;
      }
      out.replaceChildren(...Array.from(doc.body.childNodes).map((n) => document.adoptNode(n)));
      refreshLikeButtons();
      refreshExportLinks();
      player.highlight();
    } catch (e) {
      out.replaceChildren(el("p", { class: "error", text: e.message }));
    }
  });
}

// ------------------------------------------------------------------ map
const PALETTE = ["#3b5bdb", "#e8590c", "#2b8a3e", "#c2255c", "#7048e8", "#0c8599", "#e67700", "#5c940d",
  "#a61e4d", "#1864ab", "#862e9c", "#087f5b"];

async function initMap() {
  const canvas = $("#map");
  if (!canvas) return;
  const info = $("#map-info");
  const tip = $("#map-tip");
  const qs = new URLSearchParams({ color_by: canvas.dataset.colorBy || "genre", limit: "3000" });
  if (canvas.dataset.space) qs.set("space", canvas.dataset.space);
  let data;
  try {
    data = await api(`/api/map?${qs}`);
  } catch (e) {
    info.textContent = e.message;
    info.className = "error";
    return;
  }
  if (!canvas.isConnected) return; // the page changed meanwhile
  const ratio = window.devicePixelRatio || 1;
  const cssW = canvas.clientWidth || 960;
  const cssH = Math.round(cssW * 0.6);
  canvas.width = cssW * ratio;
  canvas.height = cssH * ratio;
  canvas.style.height = `${cssH}px`;
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  const pts = data.points;
  const colours = {};
  data.groups.forEach((g, i) => { colours[g] = i < PALETTE.length ? PALETTE[i] : "#adb5bd"; });
  let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
  for (const p of pts) {
    minX = Math.min(minX, p.x); maxX = Math.max(maxX, p.x);
    minY = Math.min(minY, p.y); maxY = Math.max(maxY, p.y);
  }
  const pad = 16;
  const sx = (x) => pad + ((x - minX) / (maxX - minX || 1)) * (cssW - 2 * pad);
  const sy = (y) => cssH - pad - ((y - minY) / (maxY - minY || 1)) * (cssH - 2 * pad);
  const r = pts.length > 5000 ? 2 : pts.length > 1000 ? 3 : 4.5;
  ctx.fillStyle = getComputedStyle(canvas).getPropertyValue("--panel").trim() || "#fff";
  ctx.fillRect(0, 0, cssW, cssH);
  ctx.globalAlpha = 0.8;
  const screen = pts.map((p) => ({ p, x: sx(p.x), y: sy(p.y) }));
  for (const s of screen) {
    ctx.fillStyle = s.p.group != null ? colours[s.p.group] : "#ced4da";
    ctx.beginPath();
    ctx.arc(s.x, s.y, r, 0, 2 * Math.PI);
    ctx.fill();
  }
  canvas.mapPoints = screen; // the drawn points (tests and curious users: document.querySelector("#map").mapPoints)
  canvas.dataset.points = String(pts.length);
  canvas.dataset.drawn = "true";
  const ev = data.explained_variance.map((v) => `${(100 * v).toFixed(0)} %`).join(" + ");
  info.textContent = `${data.sampled} of ${data.total} tracks in the ${data.space} space` +
    (data.model_version_id ? ` (model v${data.model_version_id})` : "") +
    `, coloured by ${data.color_by}; the two axes explain ${ev} of the variance. Click a point to open its track.`;
  const legend = $("#map-legend");
  legend.replaceChildren(...data.groups.map((g, i) =>
    el("li", { class: i < PALETTE.length ? `swatch-${i}` : "swatch-other", text: data.color_by === "cluster" ? `cluster ${g}` : g })));

  const nearest = (e) => {
    const rect = canvas.getBoundingClientRect();
    const x = e.clientX - rect.left, y = e.clientY - rect.top;
    let best = null, bestD = 100;
    for (const s of screen) {
      const d = (s.x - x) ** 2 + (s.y - y) ** 2;
      if (d < bestD) { bestD = d; best = s; }
    }
    return best;
  };
  const showTip = (s) => {
    if (!s) { tip.hidden = true; return; }
    tip.hidden = false;
    // the title is the file's name when the file has no title tag (the API's MapPoint.title)
    tip.textContent = [s.p.title || `track ${s.p.id}`, s.p.artist, s.p.group].filter((x) => x != null && x !== "").join(" — ");
    const left = Math.min(s.x + 12, Math.max(0, cssW - tip.offsetWidth - 4));
    tip.style.left = `${left}px`;
    tip.style.top = `${s.y + 8}px`;
  };
  canvas.addEventListener("mousemove", (e) => showTip(nearest(e)));
  canvas.addEventListener("mouseleave", () => { if (document.activeElement !== canvas) tip.hidden = true; });
  canvas.addEventListener("click", (e) => {
    const s = nearest(e);
    if (s) navigate(`/tracks/${s.p.id}`);
  });
  // from the keyboard: the arrows go to the nearest point that way, Enter opens it
  const ring = $("#map-cursor");
  let at = null;
  const select = (s) => {
    at = s;
    showTip(s);
    ring.hidden = !s;
    if (s) {
      ring.style.left = `${s.x}px`;
      ring.style.top = `${s.y}px`;
    }
  };
  canvas.addEventListener("focus", () => select(at || screen[0] || null));
  canvas.addEventListener("blur", () => { ring.hidden = true; tip.hidden = true; });
  canvas.addEventListener("keydown", (e) => {
    const dirs = { ArrowRight: [1, 0], ArrowLeft: [-1, 0], ArrowDown: [0, 1], ArrowUp: [0, -1] };
    if (e.key === "Enter" && at) {
      e.preventDefault();
      navigate(`/tracks/${at.p.id}`);
      return;
    }
    const d = dirs[e.key];
    if (!d || !at) return;
    e.preventDefault();
    let best = null, bestCost = Infinity;
    for (const s of screen) {
      const dx = s.x - at.x, dy = s.y - at.y;
      const along = dx * d[0] + dy * d[1];
      if (along <= 0.5) continue;
      const cost = along + 2 * Math.abs(dx * d[1] - dy * d[0]);
      if (cost < bestCost) { bestCost = cost; best = s; }
    }
    if (best) select(best);
  });
}

// ------------------------------------------------------------------ status (refreshes)
// the status page is the one rendering: the refresh fetches it again and swaps its live parts
const STATUS_PARTS = ["status-counts", "status-progress", "status-queues", "status-workers", "status-hint",
  "status-broker", "status-failures"];

async function refreshStatus() {
  const stamp = $("#status-updated");
  if (!stamp) return;
  try {
    const { res, doc } = await fetchDocument("/status");
    if (!res.ok || !doc) throw new Error(errorMessage(doc, res));
    if (!stamp.isConnected) return;
    for (const id of STATUS_PARTS) {
      const fresh = doc.getElementById(id);
      const old = document.getElementById(id);
      if (fresh && old) old.replaceWith(document.adoptNode(fresh));
    }
    stamp.textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    stamp.textContent = `not updated: ${e.message}`;
  }
}

function initStatus() {
  refreshStatus();
  const timer = setInterval(refreshStatus, 2000);
  cleanups.push(() => clearInterval(timer));
}

function cell(v) {
  if (v == null) return "";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(3);
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

function objectTable(rows) {
  const keys = Object.keys(rows[0]).filter((k) => k !== "protocol");
  const notes = [...new Set(rows.map((x) => x.protocol).filter(Boolean))];
  return el("div", { class: "scroll-x" },
    el("table", { class: "tracks" },
      el("thead", {}, el("tr", {}, ...keys.map((k) => el("th", { text: k.replaceAll("_", " ") })))),
      el("tbody", {}, ...rows.map((x) => el("tr", {}, ...keys.map((k) => el("td", { text: cell(x[k]) })))))),
    ...notes.map((n) => el("p", { class: "note", text: n })));
}

// ------------------------------------------------------------------ token-protected actions
const TOKEN_KEY = "musicindex.token";

function token() {
  const input = $(".api-token");
  const v = input && input.value.trim() ? input.value.trim() : sessionStorage.getItem(TOKEN_KEY) || "";
  if (v) sessionStorage.setItem(TOKEN_KEY, v);
  return v;
}

function authorized(method, body) {
  const headers = { Authorization: `Bearer ${token()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  return { method, headers, body: body !== undefined ? JSON.stringify(body) : undefined };
}

function initTokenForms() {
  for (const input of $$(".api-token")) input.value = sessionStorage.getItem(TOKEN_KEY) || "";
  for (const form of $$("form.token-form")) form.addEventListener("submit", (ev) => ev.preventDefault());
  const ingest = $("#ingest-form");
  if (ingest)
    ingest.addEventListener("submit", async () => {
      const out = $("#ingest-result");
      out.textContent = "scanning …";
      try {
        const r = await api("/api/ingest", authorized("POST", {}));
        out.textContent = `scanned ${r.scanned}: ${r.new} new, ${r.changed} changed, queued ${r.queued}`;
        refreshStatus();
      } catch (e) {
        out.textContent = e.message;
      }
    });
  const result = $("#model-result");
  const reload = () => setTimeout(() => navigate(location.href, { push: false }), 800);
  for (const b of $$("button.promote"))
    b.addEventListener("click", async () => {
      try {
        const r = await api(`/api/models/${b.dataset.id}/promote`, authorized("POST"));
        result.textContent = `promoted ${r.promoted}; retired ${r.retired.join(", ") || "none"}`;
        reload();
      } catch (e) {
        result.textContent = e.message;
      }
    });
  for (const b of $$("button.rollback"))
    b.addEventListener("click", async () => {
      try {
        const r = await api(`/api/models/${encodeURIComponent(b.dataset.kind)}/rollback`, authorized("POST"));
        result.textContent = `${r.rolled_back}: version ${r.model.id} is active again`;
        reload();
      } catch (e) {
        result.textContent = e.message;
      }
    });
  const evaluate = $("#evaluate");
  if (evaluate)
    evaluate.addEventListener("click", async () => {
      const out = $("#evaluate-result");
      out.replaceChildren(el("p", { class: "note", text: "evaluating …" }));
      try {
        const r = await api("/api/evaluate");
        const parts = [];
        for (const [name, rows] of Object.entries(r)) {
          if (!Array.isArray(rows) || !rows.length || typeof rows[0] !== "object") continue;
          parts.push(el("h3", { text: name }), objectTable(rows));
        }
        out.replaceChildren(...parts);
      } catch (e) {
        out.replaceChildren(el("p", { class: "error", text: e.message }));
      }
    });
}

// ------------------------------------------------------------------ a page's life: entered, left
const PAGE_INITS = { recommend: initRecommend, map: initMap, status: initStatus, saved_playlist: initPlaylistEditor };

function enterPage() {
  refreshLikeButtons();
  refreshExportLinks();
  for (const picker of $$("#content .picker")) initPicker(picker);
  initUpload();
  initTokenForms();
  player.highlight();
  const init = PAGE_INITS[document.body.dataset.page];
  if (init) init();
}

function leavePage() {
  while (cleanups.length) cleanups.pop()();
}

history.scrollRestoration = "manual";
if (!history.state) history.replaceState({ scroll: 0 }, "");
fetchLikes();
player.init();
enterPage();
window.musicindex = { navigate, player };
