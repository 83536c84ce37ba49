// musicindex web page: likes, pickers, map, status refresh, M3U export, uploads, model actions.
// Plain script, no build step, no outside resource. Data from the server is put into the page
// with textContent / DOM nodes only (never innerHTML), and the API token travels only in the
// Authorization header of requests this script makes (kept in this tab's sessionStorage).
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

async function api(path, options = {}) {
  const res = await fetch(path, options);
  const type = res.headers.get("content-type") || "";
  const body = type.includes("json") ? await res.json() : await res.text();
  if (!res.ok) {
    const msg = body && body.message ? body.message : `${res.status} ${res.statusText}`;
    const err = new Error(msg);
    err.status = res.status;
    err.body = body;
    throw err;
  }
  return body;
}

// ------------------------------------------------------------------ likes (localStorage)
const LIKES_KEY = "musicindex.likes";

function loadLikes() {
  try {
    const v = JSON.parse(localStorage.getItem(LIKES_KEY) || "{}");
    return { liked: v.liked || {}, disliked: v.disliked || {} };
  } catch (e) {
    return { liked: {}, disliked: {} };
  }
}

function saveLikes(likes) {
  localStorage.setItem(LIKES_KEY, JSON.stringify(likes));
  refreshLikeButtons();
}

function describe(button) {
  const row = button.closest("[data-id][data-title]");
  return row ? { title: row.dataset.title, artist: row.dataset.artist || "" } : { title: "", artist: "" };
}

function toggle(kind, button) {
  const likes = loadLikes();
  const id = button.dataset.id;
  const other = kind === "liked" ? "disliked" : "liked";
  if (likes[kind][id]) delete likes[kind][id];
  else {
    likes[kind][id] = describe(button);
    delete likes[other][id];
  }
  saveLikes(likes);
}

function refreshLikeButtons() {
  const likes = loadLikes();
  for (const b of $$("button.like")) b.classList.toggle("liked", !!likes.liked[b.dataset.id]);
  for (const b of $$("button.dislike")) b.classList.toggle("disliked", !!likes.disliked[b.dataset.id]);
  const n = Object.keys(likes.liked).length;
  const badge = $("#liked-count");
  if (badge) badge.textContent = n ? String(n) : "";
}

document.addEventListener("click", (ev) => {
  const b = ev.target.closest("button");
  if (!b) return;
  if (b.classList.contains("like")) toggle("liked", b);
  else if (b.classList.contains("dislike")) toggle("disliked", b);
  else if (b.classList.contains("play")) play(b.dataset.id, describe(b));
});

// ------------------------------------------------------------------ player
function play(id, info) {
  const bar = $("#player-bar");
  const player = $("#player");
  if (!bar || !player) return;
  bar.hidden = false;
  $("#player-title").textContent = [info.artist, info.title].filter(Boolean).join(" — ");
  player.src = `/api/tracks/${encodeURIComponent(id)}/audio`;
  player.play().catch(() => {});
}

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

// ------------------------------------------------------------------ recommend page
function initRecommend() {
  const likes = loadLikes();
  const params = new URLSearchParams(location.search);
  const liked = Object.keys(likes.liked).slice(-100); // the page takes at most 100 of each
  const disliked = Object.keys(likes.disliked).slice(-100);
  if (!params.has("liked") && liked.length) {
    params.delete("disliked");
    for (const id of liked) params.append("liked", id);
    for (const id of disliked) params.append("disliked", id);
    location.replace(`/recommend?${params.toString()}`);
    return;
  }
  const fields = $("#seed-fields");
  if (fields) {
    fields.replaceChildren(
      ...liked.map((id) => el("input", { type: "hidden", name: "liked", value: id })),
      ...disliked.map((id) => el("input", { type: "hidden", name: "disliked", value: id })),
    );
  }
  const clear = $("#clear-likes");
  if (clear)
    clear.addEventListener("click", () => {
      saveLikes({ liked: {}, disliked: {} });
      location.assign("/recommend");
    });
}

// ------------------------------------------------------------------ track pickers (playlist builder)
function initPickers() {
  for (const picker of $$(".picker")) {
    const q = $(".pick-q", picker);
    const hidden = $("input[type=hidden]", picker);
    const list = $(".pick-results", picker);
    let timer = null;
    let seq = 0;
    q.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(async () => {
        const text = q.value.trim();
        const mine = ++seq;
        if (!text) {
          list.replaceChildren();
          return;
        }
        try {
          const res = await api(`/api/tracks?q=${encodeURIComponent(text)}&limit=8`);
          if (mine !== seq) return;
          list.replaceChildren(
            ...res.items.map((t) => {
              const li = el("li", { "data-id": String(t.id) }, t.title || t.path.split("/").pop(), " ",
                el("small", { text: [t.artist, t.album].filter(Boolean).join(" — ") }));
              li.addEventListener("click", () => {
                hidden.value = String(t.id);
                q.value = t.title || t.path.split("/").pop();
                list.replaceChildren();
              });
              return li;
            }),
          );
        } catch (e) {
          list.replaceChildren(el("li", { text: e.message }));
        }
      }, 150);
    });
  }
}

// ------------------------------------------------------------------ query by example (upload)
function trackTable(items) {
  const rows = items.map((h, i) =>
    el("tr", { class: "track", "data-id": String(h.id), "data-title": h.title || "", "data-artist": h.artist || "" },
      el("td", { class: "num", text: String(i + 1) }),
      el("td", {}, el("a", { href: `/tracks/${h.id}`, class: "track-link", text: h.title || h.path.split("/").pop() })),
      el("td", { text: h.artist || "" }),
      el("td", { text: h.genre || "" }),
      el("td", { class: "score", text: h.similarity != null ? h.similarity.toFixed(3) : "" })),
  );
  return el("table", { class: "tracks" },
    el("thead", {}, el("tr", {}, ...["#", "title", "artist", "genre", "similarity"].map((t) => el("th", { text: t })))),
    el("tbody", {}, ...rows));
}

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
    try {
      const qs = new URLSearchParams({ k: "10", filename: file.name });
      if (space) qs.set("space", space);
      const res = await api(`/api/similar-to-file?${qs}`, {
        method: "POST", body: file, headers: { "Content-Type": "application/octet-stream" },
      });
      out.replaceChildren(el("p", { class: "note", text: `closest to ${file.name} in the ${res.space} space:` }),
        trackTable(res.items));
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
  ctx.fillStyle = "#fff";
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

  const nearest = (ev) => {
    const rect = canvas.getBoundingClientRect();
    const x = ev.clientX - rect.left, y = ev.clientY - rect.top;
    let best = null, bestD = 100;
    for (const s of screen) {
      const d = (s.x - x) ** 2 + (s.y - y) ** 2;
      if (d < bestD) { bestD = d; best = s; }
    }
    return best;
  };
  canvas.addEventListener("mousemove", (ev) => {
    const s = nearest(ev);
    if (!s) { tip.hidden = true; return; }
    tip.hidden = false;
    tip.textContent = [s.p.title, s.p.artist, s.p.group].filter((x) => x != null && x !== "").join(" — ");
    tip.style.left = `${s.x + 12}px`;
    tip.style.top = `${s.y + 8}px`;
  });
  canvas.addEventListener("mouseleave", () => { tip.hidden = true; });
  canvas.addEventListener("click", (ev) => {
    const s = nearest(ev);
    if (s) location.assign(`/tracks/${s.p.id}`);
  });
}

// ------------------------------------------------------------------ status (refreshes)
function fillTable(table, pairs) {
  table.replaceChildren(...pairs.map(([k, v]) => el("tr", {}, el("th", { text: k }), el("td", { class: "num", text: String(v) }))));
}

async function refreshStatus() {
  try {
    const s = await api("/api/status");
    fillTable($("#status-counts"), Object.entries(s.counts).sort());
    fillTable($("#status-queues"), Object.entries(s.queues).sort().map(([k, v]) => [`queue ${k}`, v]));
    $("#status-workers").textContent = `${s.workers.length} worker(s)` + (s.workers.length ? `: ${s.workers.join(", ")}` : "");
    $("#status-broker").replaceChildren(s.broker === "ok" ? "" : el("span", { class: "error", text: s.broker }));
    const p = s.progress;
    const box = $("#status-progress");
    if (p.batch) {
      const eta = p.eta_seconds ? ` · about ${Math.ceil(p.eta_seconds / 60)} min left` : "";
      const rate = p.rate_per_s ? ` · ${p.rate_per_s.toFixed(1)} files/s` : "";
      box.replaceChildren(el("progress", { max: String(p.total || 1), value: String(p.done) }),
        el("p", { text: `${p.done} / ${p.total} analysed · ${p.counts.failed || 0} failed${rate}${eta}` }));
    }
    $("#status-failures tbody").replaceChildren(...s.failures.map((f) =>
      el("tr", {}, el("td", {}, el("code", { text: f.path })), el("td", { text: f.error }))));
    $("#status-updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    $("#status-updated").textContent = `not updated: ${e.message}`;
  }
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
  return el("div", {},
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
  for (const b of $$("button.promote"))
    b.addEventListener("click", async () => {
      try {
        const r = await api(`/api/models/${b.dataset.id}/promote`, authorized("POST"));
        result.textContent = `promoted ${r.promoted}; retired ${r.retired.join(", ") || "none"}`;
        setTimeout(() => location.reload(), 800);
      } catch (e) {
        result.textContent = e.message;
      }
    });
  for (const b of $$("button.rollback"))
    b.addEventListener("click", async () => {
      try {
        const r = await api(`/api/models/${encodeURIComponent(b.dataset.kind)}/rollback`, authorized("POST"));
        result.textContent = `${r.rolled_back}: version ${r.model.id} is active again`;
        setTimeout(() => location.reload(), 800);
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

// ------------------------------------------------------------------ start
document.addEventListener("DOMContentLoaded", () => {
  refreshLikeButtons();
  refreshExportLinks();
  initPickers();
  initUpload();
  initTokenForms();
  const page = document.body.dataset.page;
  if (page === "recommend") initRecommend();
  if (page === "map") initMap();
  if (page === "status") {
    refreshStatus();
    setInterval(refreshStatus, 2000);
  }
});
