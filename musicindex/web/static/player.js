// The one player of the site: an <audio> element in the player bar (outside <main>, so it plays on while
// the page's content is swapped), a queue (play now, play next, add, play all, reorder, remove, shuffle),
// radio (a queue that extends itself from the sonic space), keyboard shortcuts and the Media Session API.
// The queue is kept by queueStore (queue-store.js): load() once, save() after every change.
"use strict";

import { $, $$, api, el, fmtTime, send, typing } from "./dom.js";
import { queueStore } from "./queue-store.js";

const RADIO_LOW = 3; // fewer tracks than this after the current one: the radio fetches more
const RADIO_BATCH = 10;
const RADIO_EXCLUDE = 300; // most recent queue entries sent as exclusions (the URL stays short)
const RADIO_SPACING = 3; // recommend's artist_spacing: no artist twice within this many tracks
const MAX_QUEUE = 1000;
const MAX_FAILURES = 3; // tracks in a row that cannot be played before the player stops trying
const SAVE_EVERY_MS = 5000;

const state = { items: [], index: -1, time: 0, radio: null };
let audio = null;
let failures = 0;
let radioBusy = null;
let pendingSeek = 0;
let lastSave = 0;
let dragFrom = null;
let touched = false; // the queue changed on this page before the saved one arrived: the saved one is ignored
let scrobbled = false; // the current track counted as played (once per load)
let announced = false; // the server was told it plays now

const SCROBBLE_AFTER_S = 240; // a track counts as played after half its length, or 4 minutes

// the listener's play count (Subsonic scrobble): once per play of a track, after half of it or 4 minutes
function countPlay() {
  const t = current();
  if (!t || scrobbled) return;
  scrobbled = true;
  send("POST", "/api/library/scrobble", { id: t.id, submission: true }).catch(() => {});
}

function current() {
  return state.index >= 0 ? state.items[state.index] : null;
}

let sayTimer = null;

// a line under the player (a live region: screen readers read it); it goes away after a while
function say(text) {
  const msg = $("#player-msg");
  if (!msg) return;
  msg.textContent = text;
  clearTimeout(sayTimer);
  if (text) sayTimer = setTimeout(() => { msg.textContent = ""; }, 8000);
}

function save(leaving = false) {
  lastSave = Date.now();
  state.time = audio && audio.src ? audio.currentTime || 0 : 0;
  queueStore.save(state, { leaving });
}

function changed() {
  touched = true;
  if (state.items.length > MAX_QUEUE) {
    const drop = Math.min(state.items.length - MAX_QUEUE, Math.max(0, state.index));
    state.items.splice(0, drop);
    state.index -= drop;
  }
  render();
  save();
  extendRadioIfLow();
}

export function track(t) {
  return { id: Number(t.id), title: t.title || "", artist: t.artist || "", album: t.album || "" };
}

// ------------------------------------------------------------------ playing
function load(i, { autoplay = true, at = 0 } = {}) {
  if (i < 0 || i >= state.items.length) return;
  state.index = i;
  const t = state.items[i];
  pendingSeek = at;
  scrobbled = false;
  announced = false;
  audio.src = `/api/tracks/${encodeURIComponent(t.id)}/audio`;
  if (autoplay) audio.play().catch(() => {});
  mediaMetadata(t);
  changed();
}

export function toggle() {
  if (!current()) {
    if (state.items.length) load(0);
    return;
  }
  if (!audio.src) load(state.index);
  else if (audio.paused) audio.play().catch(() => {});
  else audio.pause();
}

export async function next({ auto = false } = {}) {
  if (state.index < state.items.length - 1) {
    load(state.index + 1);
    return;
  }
  if (state.radio && !state.radio.done) {
    await extendRadio();
    if (state.index < state.items.length - 1) {
      load(state.index + 1);
      return;
    }
  }
  if (auto) say("End of the queue.");
}

export function prev() {
  if (audio.currentTime > 3 || state.index <= 0) {
    audio.currentTime = 0;
    return;
  }
  load(state.index - 1);
}

// ------------------------------------------------------------------ the queue
export function playNow(t) {
  const cur = current();
  if (cur && cur.id === t.id) {
    if (audio.paused) audio.play().catch(() => {});
    return;
  }
  state.items.splice(state.index + 1, 0, track(t));
  load(state.index + 1);
}

export function playNext(t) {
  state.items.splice(state.index + 1, 0, track(t));
  say(`“${t.title}” plays next.`);
  if (state.index < 0) load(0, { autoplay: false });
  else changed();
}

export function playNextMany(tracks) {
  if (!tracks.length) return;
  state.items.splice(state.index + 1, 0, ...tracks.map(track));
  say(tracks.length === 1 ? `“${tracks[0].title}” plays next.` : `${tracks.length} tracks play next.`);
  if (state.index < 0) load(0, { autoplay: false });
  else changed();
}

export function enqueue(tracks) {
  state.items.push(...tracks.map(track));
  say(tracks.length === 1 ? `“${tracks[0].title}” added to the queue.` : `${tracks.length} tracks added to the queue.`);
  if (state.index < 0 && state.items.length) load(0, { autoplay: false });
  else changed();
}

export function playAll(tracks) {
  if (!tracks.length) return;
  state.items = tracks.map(track);
  state.radio = null;
  load(0);
}

export function remove(i) {
  if (i < 0 || i >= state.items.length) return;
  const wasCurrent = i === state.index;
  state.items.splice(i, 1);
  if (i < state.index) state.index -= 1;
  if (wasCurrent) {
    const playing = !audio.paused;
    if (state.index < state.items.length) load(state.index, { autoplay: playing });
    else {
      state.index = state.items.length - 1;
      stop();
    }
    return;
  }
  changed();
}

export function move(from, to) {
  const n = state.items.length;
  if (from === to || from < 0 || to < 0 || from >= n || to >= n) return;
  const cur = current();
  const [item] = state.items.splice(from, 1);
  state.items.splice(to, 0, item);
  if (cur) state.index = state.items.indexOf(cur);
  changed();
}

export function shuffle() {
  const rest = state.items.slice(state.index + 1);
  for (let i = rest.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [rest[i], rest[j]] = [rest[j], rest[i]];
  }
  state.items.splice(state.index + 1, rest.length, ...rest);
  say(rest.length > 1 ? `Shuffled the ${rest.length} tracks after this one.` : "Nothing to shuffle after this track.");
  changed();
}

function stop() {
  audio.pause();
  audio.removeAttribute("src");
  audio.load();
  changed();
}

export function clear() {
  state.items = [];
  state.index = -1;
  state.radio = null;
  stop();
}

// ------------------------------------------------------------------ radio
// liked / disliked: the seeds; the queue extends itself with recommend's answer for them and the
// track playing, without any track already in the queue and without the artist that just played
export async function startRadio({ liked, disliked = [], label, first = null }) {
  state.items = first ? [track(first)] : [];
  state.index = -1;
  state.radio = { liked: liked.map(Number), disliked: disliked.map(Number), label, done: false };
  say(`Radio: ${label}.`);
  if (first) load(0);
  else {
    await extendRadio();
    if (state.items.length) load(0);
  }
}

function extendRadioIfLow() {
  if (state.radio && !state.radio.done && state.items.length - state.index - 1 < RADIO_LOW) extendRadio();
}

function extendRadio() {
  if (!radioBusy) radioBusy = fetchRadio().finally(() => (radioBusy = null));
  return radioBusy;
}

async function fetchRadio() {
  const radio = state.radio;
  const cur = current();
  const liked = [...radio.liked];
  if (cur && !liked.includes(cur.id)) liked.push(cur.id);
  const seeds = liked.slice(-80);
  const qs = new URLSearchParams({ k: String(RADIO_BATCH), artist_spacing: String(RADIO_SPACING) });
  for (const id of seeds) qs.append("liked", String(id));
  for (const id of radio.disliked.slice(-20)) qs.append("disliked", String(id));
  const inQueue = state.items.map((t) => t.id);
  for (const id of new Set(inQueue.slice(-RADIO_EXCLUDE))) qs.append("exclude_track", String(id));
  for (const id of inQueue.slice(-RADIO_SPACING)) qs.append("history", String(id));
  try {
    const res = await api(`/api/recommend?${qs}`);
    if (state.radio !== radio) return; // stopped or replaced meanwhile
    const known = new Set(inQueue);
    const fresh = res.items.filter((h) => !known.has(h.id)).map((h) =>
      track({ ...h, title: h.title || (h.path || "").split("/").pop() || `track ${h.id}` }));
    if (!fresh.length) {
      radio.done = true;
      say("Radio: nothing new left to play.");
    }
    state.items.push(...fresh);
    changed();
  } catch (e) {
    say(`Radio: ${e.message}`);
    radio.done = true;
  }
}

// ------------------------------------------------------------------ what the page shows
function render(focus = null) {
  const cur = current();
  const title = $("#now-title");
  title.textContent = cur ? cur.title || `track ${cur.id}` : "Nothing playing";
  title.setAttribute("href", cur ? `/tracks/${cur.id}` : "/");
  $("#now-artist").textContent = cur ? [cur.artist, cur.album].filter(Boolean).join(" — ") : "";
  const upcoming = state.items.length - state.index - 1;
  $("#queue-count").textContent = state.items.length ? String(Math.max(0, upcoming)) : "";
  $("#radio-state").textContent = state.radio ? `◎ radio: ${state.radio.label}` : "";
  const list = $("#queue-list");
  list.replaceChildren(...state.items.map((t, i) => {
    const name = [t.title || `track ${t.id}`, t.artist].filter(Boolean).join(" — ");
    return el("li", { class: i === state.index ? "q-item current" : i < state.index ? "q-item played" : "q-item",
      draggable: "true", "data-index": String(i), "data-id": String(t.id), ...(i === state.index ? { "aria-current": "true" } : {}) },
    el("button", { type: "button", class: "q-play", "aria-label": `play ${name}` }, el("span", { class: "q-pos", text: `${i + 1}.` }), " ", name),
    el("button", { type: "button", class: "q-up", "aria-label": `move ${name} up`, title: "move up (Alt+↑)", text: "↑" }),
    el("button", { type: "button", class: "q-down", "aria-label": `move ${name} down`, title: "move down (Alt+↓)", text: "↓" }),
    el("button", { type: "button", class: "q-remove", "aria-label": `remove ${name}`, title: "remove (Delete)", text: "✕" }));
  }));
  if (focus) {
    const li = list.children[Math.min(focus.index, list.children.length - 1)];
    const target = li && (li.querySelector(`.${focus.cls}`) || li.querySelector(".q-play"));
    if (target) target.focus();
  }
  highlight();
}

// the rows of the page that show the track playing
export function highlight() {
  const cur = current();
  for (const row of $$(".playing")) row.classList.remove("playing");
  if (cur) for (const row of $$(`tr.track[data-id="${cur.id}"]`)) row.classList.add("playing");
}

function showPlaying() {
  const playing = audio.src && !audio.paused;
  const btn = $("#btn-play");
  btn.classList.toggle("is-playing", playing);
  btn.setAttribute("aria-label", playing ? "pause (space)" : "play (space)");
  btn.title = playing ? "pause (space)" : "play (space)";
  if ("mediaSession" in navigator) navigator.mediaSession.playbackState = playing ? "playing" : "paused";
}

function showTime() {
  const seek = $("#seek");
  const d = Number.isFinite(audio.duration) ? audio.duration : 0;
  seek.disabled = !d;
  seek.max = String(Math.floor(d));
  if (document.activeElement !== seek) seek.value = String(Math.floor(audio.currentTime || 0));
  $("#time-now").textContent = fmtTime(audio.currentTime);
  $("#time-total").textContent = fmtTime(d);
}

// ------------------------------------------------------------------ Media Session (lock screen, headset keys)
function mediaMetadata(t) {
  if (!("mediaSession" in navigator) || typeof MediaMetadata === "undefined") return;
  navigator.mediaSession.metadata = new MediaMetadata({
    title: t.title || `track ${t.id}`, artist: t.artist || "", album: t.album || "",
    artwork: t.artwork ? [{ src: t.artwork }] : [],
  });
}

function mediaPosition() {
  if (!("mediaSession" in navigator) || !navigator.mediaSession.setPositionState) return;
  if (!Number.isFinite(audio.duration) || audio.duration <= 0) return;
  try {
    navigator.mediaSession.setPositionState({
      duration: audio.duration, position: Math.min(audio.currentTime, audio.duration), playbackRate: audio.playbackRate,
    });
  } catch (e) {
    // an inconsistent position while seeking: the next update fixes it
  }
}

function mediaHandlers() {
  if (!("mediaSession" in navigator)) return;
  const handlers = {
    play: () => audio.play().catch(() => {}),
    pause: () => audio.pause(),
    previoustrack: () => prev(),
    nexttrack: () => next(),
    seekto: (d) => { audio.currentTime = d.seekTime; },
    seekbackward: (d) => { audio.currentTime = Math.max(0, audio.currentTime - (d.seekOffset || 10)); },
    seekforward: (d) => { audio.currentTime = Math.min(audio.duration || 0, audio.currentTime + (d.seekOffset || 10)); },
  };
  for (const [action, fn] of Object.entries(handlers)) {
    try {
      navigator.mediaSession.setActionHandler(action, fn);
    } catch (e) {
      // an action this browser does not know
    }
  }
}

// ------------------------------------------------------------------ a track that cannot be played
async function failed() {
  const t = current();
  if (!t || !audio.getAttribute("src")) return;
  failures += 1;
  let why = "the file cannot be played";
  try {
    const res = await fetch(audio.src, { headers: { Range: "bytes=0-0" } });
    if (!res.ok) {
      const body = await res.json().catch(() => null);
      if (body && body.message) why = body.message;
    } else why = "the browser cannot decode this file";
  } catch (e) {
    why = "the server does not answer";
  }
  if (current() !== t) return;
  const more = state.index < state.items.length - 1 || (state.radio && !state.radio.done);
  if (failures < MAX_FAILURES && more) {
    say(`Skipped “${t.title}”: ${why}`);
    setTimeout(() => { if (current() === t) next(); }, 600);
  } else {
    say(`Cannot play “${t.title}”: ${why}`);
    showPlaying();
  }
}

// ------------------------------------------------------------------ wiring
function onQueueKey(ev) {
  const li = ev.target.closest("li.q-item");
  if (!li) return;
  const i = Number(li.dataset.index);
  const cls = ev.target.classList[0];
  if (ev.altKey && (ev.key === "ArrowUp" || ev.key === "ArrowDown")) {
    ev.preventDefault();
    const to = ev.key === "ArrowUp" ? i - 1 : i + 1;
    if (to < 0 || to >= state.items.length) return;
    move(i, to);
    render({ index: to, cls });
  } else if (ev.key === "Delete" || (ev.key === "Backspace" && !typing(ev.target))) {
    ev.preventDefault();
    remove(i);
    render({ index: i, cls: "q-play" });
  }
}

function onQueueClick(ev) {
  const b = ev.target.closest("button");
  const li = ev.target.closest("li.q-item");
  if (!b || !li) return;
  const i = Number(li.dataset.index);
  if (b.classList.contains("q-play")) load(i);
  else if (b.classList.contains("q-up") && i > 0) { move(i, i - 1); render({ index: i - 1, cls: "q-up" }); }
  else if (b.classList.contains("q-down") && i < state.items.length - 1) { move(i, i + 1); render({ index: i + 1, cls: "q-down" }); }
  else if (b.classList.contains("q-remove")) { remove(i); render({ index: i, cls: "q-remove" }); }
}

function wireDrag(list) {
  list.addEventListener("dragstart", (ev) => {
    const li = ev.target.closest("li.q-item");
    if (!li) return;
    dragFrom = Number(li.dataset.index);
    ev.dataTransfer.effectAllowed = "move";
    ev.dataTransfer.setData("text/plain", li.dataset.id);
    li.classList.add("dragging");
  });
  list.addEventListener("dragover", (ev) => {
    if (dragFrom === null || !ev.target.closest("li.q-item")) return;
    ev.preventDefault();
    ev.dataTransfer.dropEffect = "move";
    for (const x of $$(".drop-target", list)) x.classList.remove("drop-target");
    ev.target.closest("li.q-item").classList.add("drop-target");
  });
  list.addEventListener("drop", (ev) => {
    const li = ev.target.closest("li.q-item");
    if (dragFrom === null || !li) return;
    ev.preventDefault();
    const from = dragFrom;
    dragFrom = null;
    move(from, Number(li.dataset.index));
  });
  list.addEventListener("dragend", () => {
    dragFrom = null;
    for (const x of $$(".dragging, .drop-target", list)) x.classList.remove("dragging", "drop-target");
  });
}

function setQueueOpen(open) {
  $("#queue-panel").hidden = !open;
  $("#btn-queue").setAttribute("aria-expanded", String(open));
  if (open) ($(".q-item.current .q-play") || $("#queue-close")).focus();
  else $("#btn-queue").focus();
}

// space plays and pauses, n and p go to the next and previous track, / goes to the search box;
// never while typing in a field, and space stays with a button focused from the keyboard
function onShortcut(ev) {
  if (ev.defaultPrevented || ev.ctrlKey || ev.metaKey || ev.altKey || typing(ev.target)) return;
  if (ev.key === " ") {
    const t = ev.target instanceof Element ? ev.target : null;
    if (t && t.closest("input, select, textarea, summary, [contenteditable]")) return;
    if (t && t.closest("button, a, [role=button]") && t.matches(":focus-visible")) return;
    ev.preventDefault();
    toggle();
  } else if (ev.key === "n" || ev.key === "N") {
    next();
  } else if (ev.key === "p" || ev.key === "P") {
    prev();
  } else if (ev.key === "/") {
    const q = $("#q");
    if (!q) return;
    ev.preventDefault();
    q.focus();
    q.select();
  } else if (ev.key === "Escape" && !$("#queue-panel").hidden) {
    setQueueOpen(false);
  }
}

export async function init() {
  audio = $("#audio");
  if (!audio) return;
  $("#player").hidden = false;
  document.body.classList.add("has-player");
  audio.addEventListener("play", showPlaying);
  audio.addEventListener("pause", showPlaying);
  audio.addEventListener("playing", () => {
    failures = 0;
    showPlaying();
    const t = current();
    if (t && !announced) {
      announced = true;
      send("POST", "/api/library/scrobble", { id: t.id, submission: false }).catch(() => {});
    }
  });
  audio.addEventListener("ended", () => { countPlay(); next({ auto: true }); });
  audio.addEventListener("error", failed);
  audio.addEventListener("loadedmetadata", () => {
    if (pendingSeek) audio.currentTime = Math.min(pendingSeek, audio.duration || pendingSeek);
    pendingSeek = 0;
    showTime();
    mediaPosition();
  });
  audio.addEventListener("timeupdate", () => {
    showTime();
    if (!scrobbled && Number.isFinite(audio.duration) && audio.duration > 0 &&
        audio.currentTime >= Math.min(SCROBBLE_AFTER_S, audio.duration / 2)) countPlay();
    if (Date.now() - lastSave > SAVE_EVERY_MS) {
      save();
      mediaPosition();
    }
  });
  const seek = $("#seek");
  seek.addEventListener("input", () => { audio.currentTime = Number(seek.value); });
  $("#btn-play").addEventListener("click", toggle);
  $("#btn-next").addEventListener("click", () => next());
  $("#btn-prev").addEventListener("click", prev);
  $("#btn-shuffle").addEventListener("click", shuffle);
  $("#btn-queue").addEventListener("click", () => setQueueOpen($("#queue-panel").hidden));
  $("#queue-close").addEventListener("click", () => setQueueOpen(false));
  $("#queue-clear").addEventListener("click", clear);
  const list = $("#queue-list");
  list.addEventListener("click", onQueueClick);
  list.addEventListener("keydown", onQueueKey);
  wireDrag(list);
  document.addEventListener("keydown", onShortcut);
  window.addEventListener("pagehide", () => save(true));
  mediaHandlers();

  touched = false;
  const saved = await queueStore.load();
  if (touched) {
    // the listener acted before the saved queue arrived: theirs wins (and is saved)
  } else if (saved && saved.items.length) {
    state.items = saved.items;
    state.radio = saved.radio || null;
    if (saved.index >= 0) load(saved.index, { autoplay: false, at: saved.time || 0 });
    else changed();
  } else render();
  showPlaying();
}

// for the page's other parts (and the tests): what is queued and playing
export function snapshot() {
  return { items: state.items.map((t) => ({ ...t })), index: state.index, radio: state.radio ? { ...state.radio } : null,
    paused: audio ? audio.paused : true, time: audio ? audio.currentTime : 0 };
}
