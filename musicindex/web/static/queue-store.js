// Where the play queue is kept between page loads: one small interface, so that the place can change and
// nothing else does.
//
//   await queueStore.load()        -> the saved state, or null
//   await queueStore.save(state)   -> keeps it (called after every change, and every few seconds while playing)
//
// A state is { items: [{id, title, artist, album}], index: position of the current item (-1: none),
//              time: seconds into the current item, radio: null or {liked: [ids], disliked: [ids], label} }.
//
// The queue is the listener's play queue on the server (PUT/GET /api/library/queue: the one Subsonic's
// savePlayQueue writes and getPlayQueue reads, so an app picks it up). The radio's seeds, which the server does
// not keep, and a copy of the state stay in this browser's localStorage. When the server cannot keep it (accounts
// exist and nobody is logged in), the copy in localStorage is the queue.
"use strict";

import { api, hasListener, send } from "./dom.js";

const KEY = "musicindex.queue";
let server = true; // false after the server said "log in first" (localStorage only until a login)
let inFlight = null;
let pending = null;

function valid(state) {
  return state && Array.isArray(state.items) && Number.isInteger(state.index);
}

function local() {
  try {
    const state = JSON.parse(localStorage.getItem(KEY) || "null");
    if (!valid(state) || !state.items.every((t) => t && Number.isInteger(t.id))) return null;
    state.index = Math.min(Math.max(state.index, -1), state.items.length - 1);
    state.time = Number.isFinite(state.time) ? state.time : 0;
    return state;
  } catch (e) {
    return null;
  }
}

function keepLocal(state) {
  const { items, index, time, radio } = state;
  try {
    localStorage.setItem(KEY, JSON.stringify({ items, index, time, radio }));
  } catch (e) {
    // storage full or disabled
  }
}

function body(state) {
  const cur = state.index >= 0 ? state.items[state.index] : null;
  return { track_ids: state.items.map((t) => t.id), current: cur ? cur.id : null,
    position_ms: Math.max(0, Math.round((state.time || 0) * 1000)) };
}

// one request at a time, the latest state last (two saves in flight could land in the wrong order)
function push(b, keepalive) {
  if (inFlight) {
    pending = b;
    return inFlight;
  }
  const opts = keepalive ? { keepalive: true } : {};
  inFlight = fetch("/api/library/queue", {
    method: "PUT", ...opts,
    headers: { "Content-Type": "application/json", "X-CSRF-Token": document.querySelector('meta[name="csrf-token"]')?.content || "" },
    body: JSON.stringify(b),
  }).then((res) => { if (res.status === 401) server = false; })
    .catch(() => {})
    .finally(() => {
      inFlight = null;
      if (pending) {
        const next = pending;
        pending = null;
        push(next, false);
      }
    });
  return inFlight;
}

export const queueStore = {
  // after a login or logout: ask the server again
  reset() {
    server = true;
  },

  async load() {
    const copy = local();
    if (!server || !hasListener()) return copy;
    let q;
    try {
      q = await api("/api/library/queue");
    } catch (e) {
      if (e.status === 401) server = false;
      return copy;
    }
    const items = q.songs.map((s) => ({ id: s.id, title: s.title, artist: s.artist, album: s.album }));
    if (!items.length) return null;
    let index = q.current != null ? items.findIndex((t) => t.id === q.current) : -1;
    if (copy && copy.index >= 0 && copy.items[copy.index] && copy.items[copy.index].id === q.current) {
      index = Math.min(copy.index, items.length - 1); // the same place among repeats
      if (items[index].id !== q.current) index = items.findIndex((t) => t.id === q.current);
    }
    const sameIds = copy && copy.items.length === items.length && copy.items.every((t, i) => t.id === items[i].id);
    // the same queue as this browser's copy: its names too (an untitled track is named by its file there)
    return { items: sameIds ? copy.items : items, index, time: (q.position_ms || 0) / 1000,
      radio: sameIds ? copy.radio || null : null };
  },

  async save(state, { leaving = false } = {}) {
    keepLocal(state);
    if (server && hasListener()) await push(body(state), leaving);
  },
};

export { send };
