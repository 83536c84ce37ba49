// Drives a musicindex server with subsonic-api (an OpenSubsonic client written independently, in TypeScript) and
// prints what it saw as one JSON object; tests/test_subsonic_clients.py checks it.
// Usage: node subsonic_client.mjs '{"url": ..., "username": ..., "password": ..., "apiKey": ..., "out": DIR}'
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { SubsonicAPI } from "subsonic-api";

const cfg = JSON.parse(process.argv[2]);
const api = new SubsonicAPI({ url: cfg.url, auth: { username: cfg.username, password: cfg.password } });
const posting = new SubsonicAPI({ url: cfg.url, auth: { username: cfg.username, password: cfg.password }, post: true });
const keyed = new SubsonicAPI({ url: cfg.url, auth: { apiKey: cfg.apiKey } });
const seen = {};

async function bytesOf(response) {
  return Buffer.from(await response.arrayBuffer());
}

async function caught(call) {
  try {
    const r = await call();
    return { status: r.status, error: r.error ?? null };
  } catch (e) {
    return { thrown: String(e).slice(0, 200) };
  }
}

seen.ping = (await api.ping()).status;
seen.pingByKey = (await keyed.ping()).status;
seen.pingByPost = (await posting.ping()).status;
const ext = await api.getOpenSubsonicExtensions();
seen.extensions = Object.fromEntries(ext.openSubsonicExtensions.map((e) => [e.name, e.versions]));
const list = await api.getAlbumList2({ type: "alphabeticalByName", size: 50 });
seen.albums = list.albumList2.album.map((a) => a.name);
const album = await api.getAlbum({ id: list.albumList2.album[0].id });
seen.albumSongs = album.album.song.map((s) => ({ id: s.id, suffix: s.suffix, duration: s.duration }));
seen.albumCreatedIsDate = album.album.created instanceof Date;
const songId = cfg.songId;
seen.song = (await api.getSong({ id: songId })).song.title;

// streams: the original, a transcode, a transcode from an offset with an estimated length
const original = await api.stream({ id: songId });
seen.original = { status: original.status, type: original.headers.get("content-type"), bytes: (await bytesOf(original)).length };
for (const [name, args] of [
  ["mp3", { format: "mp3", maxBitRate: 128 }],
  ["aac", { format: "aac", maxBitRate: 96 }],
  ["offset", { format: "mp3", maxBitRate: 128, timeOffset: 1, estimateContentLength: true }],
]) {
  const r = await api.stream({ id: songId, ...args });
  const body = await bytesOf(r);
  writeFileSync(join(cfg.out, `${name}.bin`), body);
  seen[`stream_${name}`] = { status: r.status, type: r.headers.get("content-type"), length: r.headers.get("content-length"), bytes: body.length };
}
const bad = await api.stream({ id: songId, format: "xyz" });
seen.badFormat = { status: bad.status, type: bad.headers.get("content-type"), body: JSON.parse(await bad.text())["subsonic-response"] };

// bookmarks and playback reports
await api.createBookmark({ id: songId, position: 42000, comment: "from node" });
const marks = await api.getBookmarks();
seen.bookmarks = marks.bookmarks.bookmark.map((b) => ({ id: b.entry.id, position: b.position, comment: b.comment, username: b.username }));
seen.deleteBookmark = (await api.deleteBookmark({ id: songId })).status;
seen.afterDelete = (await api.getBookmarks()).bookmarks.bookmark?.length ?? 0;
for (const state of ["starting", "playing"]) {
  seen[`report_${state}`] = (await posting.reportPlayback({ mediaId: songId, mediaType: "song", positionMs: 0, state })).status;
}
seen.nowPlaying = ((await api.getNowPlaying()).nowPlaying.entry ?? []).map((e) => e.id);
seen.report_stopped = (await api.reportPlayback({ mediaId: songId, mediaType: "song", positionMs: 1000, state: "stopped" })).status;

// lyrics (songLyrics and the legacy call): this library has none, the answers must still parse
const byId = await api.getLyricsBySongId({ id: songId });
seen.lyricsBySongId = { status: byId.status, lyrics: byId.lyricsList?.structuredLyrics ?? [] };
const legacy = await api.getLyrics({ artist: "x", title: "y" });
seen.lyrics = { status: legacy.status, lyrics: legacy.lyrics ?? null };

// what is not offered: the protocol's error, never HTML (a JSON parse error would throw here)
seen.notOffered = {};
for (const [name, call] of [
  ["getPodcasts", () => api.getPodcasts({})],
  ["getShares", () => api.getShares()],
  ["getInternetRadioStations", () => api.getInternetRadioStations()],
  ["getUsers", () => api.getUsers()],
  ["createUser", () => api.createUser({ username: "mallory", password: "x", email: "m@example.org" })],
  ["jukeboxControl", () => api.jukeboxControl({ action: "status" })],
  ["getVideos", () => api.getVideos({})],
  ["getChatMessages", () => api.getChatMessages({})],
]) {
  seen.notOffered[name] = await caught(call);
}
const avatar = await api.getAvatar({ username: cfg.username });
seen.avatar = { status: avatar.status, body: JSON.parse(await avatar.text())["subsonic-response"].error };
process.stdout.write(JSON.stringify(seen));
