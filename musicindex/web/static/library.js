// The listener's side of the page: likes are the listener's stars on the server (the same that a Subsonic app
// shows: getStarred2), ratings, the actions of albums, artists and playlists (play, play next, add: their tracks
// fetched from /api/library/tracks-of), and the saved playlist editor (add with the picker, reorder with
// Alt+arrows or the arrow buttons, remove with Delete; each change is saved on the server at once).
// Dislikes are no Subsonic notion: they stay in this browser (localStorage), as before.
"use strict";

import { $, $$, api, el, hasListener, send } from "./dom.js";
import * as player from "./player.js";

const DISLIKES_KEY = "musicindex.dislikes";
const OLD_LIKES_KEY = "musicindex.likes"; // phase 1 kept likes here: its dislikes are carried over

const likes = { liked: new Set(), names: new Map(), ready: null, canStar: true, version: 0 };

function loadDislikes() {
  try {
    const v = JSON.parse(localStorage.getItem(DISLIKES_KEY) || "null");
    if (v && typeof v === "object") return v;
    const old = JSON.parse(localStorage.getItem(OLD_LIKES_KEY) || "{}");
    return old.disliked || {};
  } catch (e) {
    return {};
  }
}

function saveDislikes(d) {
  try {
    localStorage.setItem(DISLIKES_KEY, JSON.stringify(d));
  } catch (e) {
    // storage disabled
  }
}

export function loadLikes() {
  return { liked: Object.fromEntries([...likes.liked].map((id) => [id, likes.names.get(id) || {}])), disliked: loadDislikes() };
}

export function fetchLikes() {
  const version = likes.version;
  if (!hasListener()) {
    likes.liked.clear();
    likes.ready = Promise.resolve();
    refreshLikeButtons();
    return likes.ready;
  }
  likes.ready = api("/api/library/starred")
    .then((s) => {
      if (version !== likes.version) return; // a like or unlike meanwhile: this answer is older than the page
      likes.liked = new Set(s.songs.map((x) => String(x.id)));
      for (const x of s.songs) likes.names.set(String(x.id), { title: x.title, artist: x.artist });
    })
    .catch((e) => {
      if (e.status === 401) likes.canStar = false;
    })
    .finally(refreshLikeButtons);
  return likes.ready;
}

export function likesReady() {
  return likes.ready || fetchLikes();
}

function say(text) {
  const msg = $("#player-msg");
  if (msg) msg.textContent = text;
}

export async function toggleLike(kind, button, track) {
  const id = String(button.dataset.id);
  const dislikes = loadDislikes();
  if (kind === "disliked") {
    if (dislikes[id]) delete dislikes[id];
    else {
      dislikes[id] = { title: track ? track.title : "", artist: track ? track.artist : "" };
      if (likes.liked.has(id)) await setStar(id, false);
    }
    saveDislikes(dislikes);
    refreshLikeButtons();
    return;
  }
  const on = !likes.liked.has(id);
  if (on && dislikes[id]) {
    delete dislikes[id];
    saveDislikes(dislikes);
  }
  if (track) likes.names.set(id, { title: track.title, artist: track.artist });
  await setStar(id, on);
}

async function setStar(id, on) {
  likes.version += 1;
  if (on) likes.liked.add(id);
  else likes.liked.delete(id);
  refreshLikeButtons(); // at once; undone if the server refuses
  try {
    await send("POST", on ? "/api/library/star" : "/api/library/unstar", { ids: [Number(id)], type: "track" });
  } catch (e) {
    if (on) likes.liked.delete(id);
    else likes.liked.add(id);
    refreshLikeButtons();
    say(e.status === 401 ? "Log in to like tracks (they are kept with your account)." : `Not saved: ${e.message}`);
  }
}

export function refreshLikeButtons() {
  const dislikes = loadDislikes();
  for (const b of $$("button.like")) {
    const on = likes.liked.has(String(b.dataset.id));
    b.classList.toggle("liked", on);
    b.setAttribute("aria-pressed", String(on));
  }
  for (const b of $$("button.dislike")) {
    const on = !!dislikes[b.dataset.id];
    b.classList.toggle("disliked", on);
    b.setAttribute("aria-pressed", String(on));
  }
  const badge = $("#liked-count");
  if (badge) badge.textContent = likes.liked.size ? String(likes.liked.size) : "";
}

export async function clearLikes() {
  const ids = [...likes.liked].map(Number);
  saveDislikes({});
  likes.version += 1;
  likes.liked.clear();
  refreshLikeButtons();
  if (ids.length) await send("POST", "/api/library/unstar", { ids, type: "track" }).catch((e) => say(e.message));
}

// ------------------------------------------------------------------ albums, artists, playlists as queue items
export async function tracksOfItem(node) {
  const item = node.closest("[data-kind][data-item]");
  if (!item) return [];
  const songs = await api(`/api/library/tracks-of/${item.dataset.kind}/${item.dataset.item}`);
  return songs.map((s) => ({ id: s.id, title: s.title, artist: s.artist, album: s.album }));
}

async function itemAction(b) {
  try {
    if (b.classList.contains("items-play-all") || b.classList.contains("items-add-all")) {
      const cards = $$("[data-kind][data-item]", b.closest("section.items"));
      const lists = await Promise.all(cards.map((c) => tracksOfItem(c)));
      const all = lists.flat();
      if (b.classList.contains("items-play-all")) player.playAll(all);
      else player.enqueue(all);
      return;
    }
    const tracks = await tracksOfItem(b);
    if (!tracks.length) {
      say("Nothing to play there.");
      return;
    }
    if (b.classList.contains("item-play")) player.playAll(tracks);
    else if (b.classList.contains("item-next")) player.playNextMany(tracks);
    else player.enqueue(tracks);
  } catch (e) {
    say(e.message);
  }
}

async function starItem(b) {
  const on = b.getAttribute("aria-pressed") !== "true";
  try {
    await send("POST", on ? "/api/library/star" : "/api/library/unstar", { ids: [Number(b.dataset.id)], type: b.dataset.type });
    b.classList.toggle("liked", on);
    b.setAttribute("aria-pressed", String(on));
  } catch (e) {
    say(e.status === 401 ? "Log in to star (it is kept with your account)." : e.message);
  }
}

document.addEventListener("click", (ev) => {
  const b = ev.target.closest("button");
  if (!b) return;
  const cls = b.classList;
  if (cls.contains("item-play") || cls.contains("item-next") || cls.contains("item-add") ||
      cls.contains("items-play-all") || cls.contains("items-add-all")) itemAction(b);
  else if (cls.contains("star-item")) starItem(b);
  else if (cls.contains("pl-up") || cls.contains("pl-down") || cls.contains("pl-remove")) editorButton(b);
});

document.addEventListener("change", async (ev) => {
  const s = ev.target;
  if (!(s instanceof HTMLSelectElement) || !s.classList.contains("rate")) return;
  try {
    await send("POST", "/api/library/rating", { id: Number(s.dataset.id), type: s.dataset.type, rating: Number(s.value) });
    say(Number(s.value) ? `Rated ${s.value} of 5.` : "Rating cleared.");
  } catch (e) {
    say(e.status === 401 ? "Log in to rate." : e.message);
  }
});

// ------------------------------------------------------------------ the saved playlist editor
function editorSection() {
  return $("section.saved-playlist[data-editable=true]");
}

function entries() {
  return $$("#pl-entries li.track").map((li) => ({ id: Number(li.dataset.id), title: li.dataset.title,
    artist: li.dataset.artist, album: li.dataset.album }));
}

function renderEntries(songs, focus = null) {
  const list = $("#pl-entries");
  const section = editorSection();
  if (!list || !section) return;
  list.replaceChildren(...songs.map((s, i) => {
    const name = s.title || `track ${s.id}`;
    return el("li", { class: "track pl-entry", "data-id": String(s.id), "data-title": name, "data-artist": s.artist || "",
      "data-album": s.album || "", "data-index": String(i) },
    el("a", { class: "track-link", href: `/tracks/${s.id}`, text: name }), " ", el("small", { text: s.artist || "" }), " ",
    el("span", { class: "js-only" },
      el("button", { type: "button", class: "play", "data-id": String(s.id), "aria-label": `play ${name} now`, text: "▶" }),
      el("button", { type: "button", class: "play-next", "data-id": String(s.id), "aria-label": `play ${name} next`, text: "⤵" }),
      el("button", { type: "button", class: "enqueue", "data-id": String(s.id), "aria-label": `add ${name} to the queue`, text: "+" })),
    el("button", { type: "button", class: "like", "data-id": String(s.id), "aria-label": `like ${name}`, text: "♥" }),
    el("span", { class: "js-only" },
      el("button", { type: "button", class: "pl-up", "aria-label": `move ${name} up`, text: "↑" }),
      el("button", { type: "button", class: "pl-down", "aria-label": `move ${name} down`, text: "↓" }),
      el("button", { type: "button", class: "pl-remove", "aria-label": `remove ${name}`, text: "✕" })));
  }));
  const count = $(".pl-count", section);
  if (count) count.textContent = String(songs.length);
  const empty = $(".pl-empty", section);
  if (empty) empty.hidden = songs.length > 0;
  const link = $("a.m3u-link", section);
  if (link) {
    const qs = songs.map((s) => `ids=${s.id}`).join("&");
    link.dataset.href = `/api/m3u?${qs}${qs ? "&" : ""}title=${encodeURIComponent(section.dataset.title)}`;
    link.href = link.dataset.href;
    link.hidden = !songs.length;
  }
  refreshLikeButtons();
  player.highlight();
  if (focus) {
    const li = list.children[Math.min(focus.index, list.children.length - 1)];
    const target = li && (li.querySelector(`.${focus.cls}`) || li.querySelector(".track-link"));
    if (target) target.focus();
  }
}

let saving = Promise.resolve();

function saveEntries(ids, focus) {
  const section = editorSection();
  const msg = $("#pick-add-msg");
  saving = saving.then(async () => {
    try {
      const p = await send("PUT", `/api/library/playlists/${section.dataset.playlist}`, { track_ids: ids });
      renderEntries(p.songs, focus);
    } catch (e) {
      if (msg) msg.textContent = `Not saved: ${e.message}`;
    }
  });
  return saving;
}

function moveEntry(i, to, cls) {
  const ids = entries().map((t) => t.id);
  if (to < 0 || to >= ids.length) return;
  const [x] = ids.splice(i, 1);
  ids.splice(to, 0, x);
  return saveEntries(ids, { index: to, cls });
}

function removeEntry(i) {
  const ids = entries().map((t) => t.id);
  ids.splice(i, 1);
  return saveEntries(ids, { index: i, cls: "track-link" });
}

function editorButton(b) {
  const li = b.closest("li.pl-entry");
  if (!li) return;
  const i = Number(li.dataset.index);
  if (b.classList.contains("pl-up")) moveEntry(i, i - 1, "pl-up");
  else if (b.classList.contains("pl-down")) moveEntry(i, i + 1, "pl-down");
  else removeEntry(i);
}

export function initPlaylistEditor() {
  const section = editorSection();
  if (!section) return;
  const list = $("#pl-entries");
  list.addEventListener("keydown", (ev) => {
    const li = ev.target.closest("li.pl-entry");
    if (!li) return;
    const i = Number(li.dataset.index);
    const cls = ev.target.classList[0] || "track-link";
    if (ev.altKey && (ev.key === "ArrowUp" || ev.key === "ArrowDown")) {
      ev.preventDefault();
      moveEntry(i, ev.key === "ArrowUp" ? i - 1 : i + 1, cls);
    } else if (ev.key === "Delete") {
      ev.preventDefault();
      removeEntry(i);
    }
  });
  const picker = $('.picker[data-for="add"]');
  if (picker)
    picker.addEventListener("picked", (ev) => {
      const t = ev.detail;
      const q = $(".pick-q", picker);
      saveEntries([...entries().map((x) => x.id), t.id]).then(() => {
        $("#pick-add-msg").textContent = `Added “${t.title || t.id}”.`;
        q.value = "";
        $("input[type=hidden]", picker).value = "";
        q.focus();
      });
    });
}
