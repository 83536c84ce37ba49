// Where the play queue is kept between page loads: one small interface, so that the place can change
// (today this browser's localStorage; with users, the user's play queue on the server) and nothing else.
//
//   await queueStore.load()        -> the saved state, or null
//   await queueStore.save(state)   -> keeps it (called after every change, and every few seconds while playing)
//
// A state is { items: [{id, title, artist, album}], index: position of the current item (-1: none),
//              time: seconds into the current item, radio: null or {liked: [ids], disliked: [ids], label} }.
"use strict";

const KEY = "musicindex.queue";

function valid(state) {
  return state && Array.isArray(state.items) && Number.isInteger(state.index);
}

export const queueStore = {
  async load() {
    try {
      const state = JSON.parse(localStorage.getItem(KEY) || "null");
      if (!valid(state)) return null;
      if (!state.items.every((t) => t && Number.isInteger(t.id))) return null;
      state.index = Math.min(Math.max(state.index, -1), state.items.length - 1);
      state.time = Number.isFinite(state.time) ? state.time : 0;
      return state;
    } catch (e) {
      return null;
    }
  },

  async save(state) {
    const { items, index, time, radio } = state;
    try {
      localStorage.setItem(KEY, JSON.stringify({ items, index, time, radio }));
    } catch (e) {
      // storage full or disabled: the queue lives on until the tab closes
    }
  },
};
