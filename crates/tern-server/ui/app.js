// The tern browser chat: state and wiring to the SDK (served at /sdk/).
import { TernClient, TernHttp, TernError, directConv, newCmid } from "/sdk/index.js";
import { $, convTitle, lastSeenText, paintAvatar, renderConvs, renderMessages } from "./view.js";

const STORE_KEY = "tern.session";
const PAGE = 40;
const TYPING_SHOWN_MS = 4000;

const S = {
  me: null,
  client: null,
  http: new TernHttp({ url: location.origin }),
  convs: new Map(), // conv -> {conv, kind, peer?, name?, last?, last_seq, read_seq, unread}
  open: null,
  msgs: new Map(), // conv -> {bySeq: Map, pending: Map(cmid -> item), more, loaded}
  reads: new Map(), // conv -> Map(user -> seq)
  presence: new Map(), // user -> {online, last_seen}
  typing: new Map(), // conv -> Map(user -> until)
  groups: new Map(), // group id -> group
  everConnected: false,
};

// ---------- session ----------

function saved() {
  try {
    const s = JSON.parse(sessionStorage.getItem(STORE_KEY) ?? "null");
    return s && s.token && s.expires_at > Date.now() + 60_000 ? s : null;
  } catch {
    return null;
  }
}

async function authSubmit(register) {
  const user = $("auth-user").value.trim().toLowerCase();
  const pass = $("auth-pass").value;
  const err = $("auth-error");
  err.textContent = "";
  if (!/^[a-z0-9][a-z0-9_.-]{2,31}$/.test(user)) {
    err.textContent = "Usernames are 3–32 characters: a–z, 0–9, _ . - (starting with a letter or digit).";
    return $("auth-user").focus();
  }
  if (pass.length < 8) {
    err.textContent = "Passwords have at least 8 characters.";
    return $("auth-pass").focus();
  }
  try {
    if (register) await S.http.register(user, pass);
    const login = await S.http.login(user, pass);
    sessionStorage.setItem(STORE_KEY, JSON.stringify(login));
    $("auth-pass").value = "";
    await start(login);
  } catch (e) {
    err.textContent = e instanceof TernError && e.code === "conflict" ? "That username is taken."
      : e instanceof TernError && e.code === "unauthorized" ? "Wrong username or password."
      : `Could not ${register ? "register" : "log in"}: ${e.message}`;
  }
}

async function start(login) {
  S.me = login.user;
  S.http.setToken(login.token);
  $("auth").hidden = true;
  $("app").hidden = false;
  $("me-name").textContent = S.me;
  paintAvatar($("me-avatar"), S.me, false);
  const client = new TernClient({ url: location.origin, token: login.token, device: "browser", reconnect: { maxMs: 8000 } });
  S.client = client;
  client.on("state", onState);
  client.on("convs", onConvs);
  client.on("message", onMessage);
  client.on("receipt", onReceipt);
  client.on("typing", onTyping);
  client.on("presence", (p) => { S.presence.set(p.user, p); renderList(); renderHeader(); });
  client.on("group", onGroup);
  client.on("ack", (a) => markDelivered(a));
  document.title = `tern · ${S.me}`;
  $("dm-user").focus();
  try {
    await client.connect();
  } catch (e) {
    // The `state` handler shows why (expired token, banned).
  }
}

async function logout(message) {
  const client = S.client;
  S.client = null;
  sessionStorage.removeItem(STORE_KEY);
  if (client) await client.close();
  Object.assign(S, { me: null, open: null, everConnected: false });
  for (const k of ["convs", "msgs", "reads", "presence", "typing", "groups"]) S[k].clear();
  $("app").hidden = true;
  $("auth").hidden = false;
  $("banner").hidden = true;
  $("auth-error").textContent = message ?? "";
  document.body.classList.remove("chat-open");
  document.title = "tern";
  $("auth-user").focus();
}

function onState(s) {
  const banner = $("banner");
  if (s.state === "open") {
    S.everConnected = true;
    banner.hidden = true;
    banner.textContent = "";
  } else if (s.state === "reconnecting" || (s.state === "connecting" && S.everConnected)) {
    banner.hidden = false;
    banner.textContent = "Connection lost. Reconnecting…";
  } else if (s.state === "connecting") {
    banner.hidden = false;
    banner.textContent = "Connecting…";
  } else if (s.state === "closed" && S.client) {
    const why = s.code === 4001 ? "Your session expired. Please log in again."
      : s.code === 4011 ? "You were signed out by the server." : `Disconnected (${s.code ?? "?"}).`;
    void logout(why);
  }
}

// ---------- conversations ----------

function sortedConvs() {
  return [...S.convs.values()].sort((a, b) => (b.last?.ts ?? b.created ?? 0) - (a.last?.ts ?? a.created ?? 0));
}

function renderList() {
  const list = sortedConvs();
  renderConvs($("conv-list"), list, { me: S.me, open: S.open, presence: S.presence, onOpen: openConv });
  $("conv-empty").hidden = list.length > 0;
}

function watchPeers(convs) {
  const users = convs.filter((c) => c.kind === "direct" && c.peer !== S.me && !S.presence.has(c.peer)).map((c) => c.peer);
  if (users.length === 0 || !S.client) return;
  for (const u of users) S.presence.set(u, { user: u, online: false, last_seen: null });
  S.client.presence(users).then((items) => {
    for (const p of items) S.presence.set(p.user, p);
    renderList();
    renderHeader();
  }, () => {});
}

function onConvs(items) {
  for (const c of items) {
    const prev = S.convs.get(c.conv);
    S.convs.set(c.conv, { ...prev, ...c });
  }
  watchPeers(items);
  renderList();
  if (S.open) maybeMarkRead(S.open);
}

function ensureConv(conv, init) {
  let c = S.convs.get(conv);
  if (!c) {
    c = { conv, last_seq: 0, read_seq: 0, unread: 0, created: Date.now(), ...init };
    S.convs.set(conv, c);
  }
  return c;
}

function convState(conv) {
  let m = S.msgs.get(conv);
  if (!m) {
    m = { bySeq: new Map(), pending: new Map(), more: false, loaded: false };
    S.msgs.set(conv, m);
  }
  return m;
}

function onMessage(m) {
  const c = ensureConv(m.conv, m.conv.startsWith("d:") ? { kind: "direct", peer: peerOf(m.conv) } : { kind: "group", name: "Group" });
  const st = convState(m.conv);
  st.bySeq.set(m.seq, m);
  if (m.from === S.me) st.pending.delete(m.cmid);
  if (m.seq > c.last_seq) {
    c.last_seq = m.seq;
    c.last = m;
    if (m.from === S.me) c.read_seq = Math.max(c.read_seq, m.seq);
    c.unread = Math.max(0, c.last_seq - c.read_seq);
  }
  clearTyping(m.conv, m.from);
  if (c.kind === "direct") watchPeers([c]);
  if (!c.name && c.kind === "group") refreshGroup(m.conv.slice(2));
  renderList();
  if (S.open === m.conv) {
    renderChat();
    maybeMarkRead(m.conv);
  }
}

function peerOf(conv) {
  const [, a, b] = conv.split(":");
  return a === S.me ? b : a;
}

function maybeMarkRead(conv) {
  const c = S.convs.get(conv);
  if (!c || !S.client || document.visibilityState === "hidden" || S.open !== conv) return;
  if (c.last_seq > c.read_seq) {
    const seq = c.last_seq;
    c.read_seq = seq;
    c.unread = 0;
    renderList();
    S.client.read(conv, seq).catch(() => { c.read_seq = Math.min(c.read_seq, seq - 1); });
  }
}

function onReceipt(r) {
  const c = S.convs.get(r.conv);
  if (r.user === S.me) {
    if (c && r.seq > c.read_seq) {
      c.read_seq = r.seq;
      c.unread = Math.max(0, c.last_seq - r.seq);
      renderList();
    }
    return;
  }
  let m = S.reads.get(r.conv);
  if (!m) S.reads.set(r.conv, (m = new Map()));
  m.set(r.user, Math.max(m.get(r.user) ?? 0, r.seq));
  if (S.open === r.conv) renderChat();
}

function onTyping(t) {
  let m = S.typing.get(t.conv);
  if (!m) S.typing.set(t.conv, (m = new Map()));
  m.set(t.user, Date.now() + TYPING_SHOWN_MS);
  renderTyping();
  setTimeout(renderTyping, TYPING_SHOWN_MS + 50);
}

function clearTyping(conv, user) {
  S.typing.get(conv)?.delete(user);
  if (S.open === conv) renderTyping();
}

function onGroup(ev) {
  const conv = `g:${ev.group.id}`;
  const gone = ev.event === "deleted" || (ev.event === "member_removed" && ev.users.includes(S.me));
  if (gone) {
    S.groups.delete(ev.group.id);
    S.convs.delete(conv);
    if (S.open === conv) closeChat();
    renderList();
    return;
  }
  S.groups.set(ev.group.id, ev.group);
  const c = ensureConv(conv, { kind: "group", name: ev.group.name, created: ev.group.created_at });
  c.name = ev.group.name;
  renderList();
  if (S.open === conv) renderHeader();
}

function refreshGroup(id) {
  S.http.group(id).then((g) => onGroup({ event: "updated", group: g, users: [] }), () => {});
}

// ---------- the open chat ----------

async function openConv(conv) {
  S.open = conv;
  document.body.classList.add("chat-open");
  $("chat-none").hidden = true;
  $("chat-view").hidden = false;
  $("compose").value = "";
  renderHeader();
  renderList();
  renderTyping();
  const st = convState(conv);
  renderChat({ forceBottom: true });
  $("compose").focus();
  if (conv.startsWith("g:") && !S.groups.has(conv.slice(2))) refreshGroup(conv.slice(2));
  if (!st.loaded) await loadPage(conv, undefined);
  maybeMarkRead(conv);
}

function closeChat() {
  S.open = null;
  document.body.classList.remove("chat-open");
  $("chat-view").hidden = true;
  $("chat-none").hidden = false;
  renderList();
}

async function loadPage(conv, before) {
  const st = convState(conv);
  const c = S.convs.get(conv);
  if (!S.client || S.client.state !== "open") return;
  if (c && c.last_seq === 0 && before === undefined && !c.last) {
    st.loaded = true;
    S.client.track(conv, 0);
    renderChat({ forceBottom: true });
    return;
  }
  try {
    const page = await S.client.sync(conv, before === undefined ? { limit: PAGE } : { before, limit: PAGE });
    for (const m of page.items) st.bySeq.set(m.seq, m);
    st.more = page.more;
    if (before === undefined) {
      st.loaded = true;
      S.client.track(conv, page.items.at(-1)?.seq ?? 0);
    }
    if (S.open === conv) renderChat(before === undefined ? { forceBottom: true } : { keepOffset: true });
  } catch (e) {
    $("side-error").textContent = `Could not load messages: ${e.message}`;
  }
}

function statusOf(conv, m) {
  if (m.from !== S.me) return undefined;
  const reads = S.reads.get(conv);
  if (reads) for (const seq of reads.values()) if (seq >= m.seq) return "read";
  return "delivered";
}

function renderChat(opts = {}) {
  const conv = S.open;
  if (!conv) return;
  const st = convState(conv);
  const items = [...st.bySeq.values()].sort((a, b) => a.seq - b.seq).map((m) => ({ ...m, status: statusOf(conv, m) }));
  for (const p of st.pending.values()) items.push(p);
  renderMessages($("messages"), $("scroller"), items, { me: S.me, group: conv.startsWith("g:"), ...opts });
  $("older-btn").hidden = !st.more;
}

function renderHeader() {
  const conv = S.open;
  if (!conv) return;
  const c = S.convs.get(conv);
  if (!c) return;
  const title = convTitle(c);
  $("chat-name").textContent = title;
  paintAvatar($("chat-avatar"), title, c.kind === "group");
  if (c.kind === "group") {
    const g = S.groups.get(conv.slice(2));
    $("chat-sub").textContent = g ? `${g.members.length} members: ${g.members.join(", ")}` : "group";
    const canAdd = g && (g.owner === S.me || g.admins.includes(S.me));
    $("add-box").hidden = !canAdd;
  } else {
    $("chat-sub").textContent = c.peer === S.me ? "notes to self" : lastSeenText(S.presence.get(c.peer));
    $("add-box").hidden = true;
  }
}

function renderTyping() {
  const now = Date.now();
  const m = S.open ? S.typing.get(S.open) : null;
  const who = m ? [...m].filter(([, until]) => until > now).map(([u]) => u) : [];
  $("typing").textContent = who.length === 0 ? "" : who.length === 1 ? `${who[0]} is typing…` : `${who.join(", ")} are typing…`;
}

function sendCurrent() {
  const conv = S.open;
  const body = $("compose").value.trim();
  if (!conv || !body || !S.client) return;
  $("compose").value = "";
  autosize();
  const c = S.convs.get(conv);
  const cmid = newCmid();
  const st = convState(conv);
  st.pending.set(cmid, { cmid, from: S.me, body, ts: Date.now(), status: "pending", kind: "text" });
  renderChat({ forceBottom: true });
  const target = c?.kind === "direct" && c.last_seq === 0 ? { to: c.peer } : { conv };
  S.client.send({ ...target, body, cmid }).catch((e) => {
    const p = st.pending.get(cmid);
    if (p) {
      p.status = "failed";
      p.error = `Not sent: ${e.message}`;
    }
    if (S.open === conv) renderChat();
  });
}

function markDelivered(ack) {
  const st = convState(ack.conv);
  const p = st.pending.get(ack.cmid);
  if (!p) return;
  st.pending.delete(ack.cmid);
  const m = { conv: ack.conv, seq: ack.seq, mid: ack.mid, from: S.me, body: p.body, kind: "text", ts: ack.ts, cmid: ack.cmid };
  st.bySeq.set(ack.seq, m);
  const c = ensureConv(ack.conv, { kind: "direct", peer: peerOf(ack.conv) });
  if (ack.seq > c.last_seq) {
    c.last_seq = ack.seq;
    c.last = m;
  }
  c.read_seq = Math.max(c.read_seq, ack.seq);
  c.unread = Math.max(0, c.last_seq - c.read_seq);
  renderList();
  if (S.open === ack.conv) renderChat();
}

// ---------- forms ----------

async function startDirect(e) {
  e.preventDefault();
  const input = $("dm-user");
  const user = input.value.trim().toLowerCase();
  $("side-error").textContent = "";
  if (!user) return;
  try {
    await S.http.presence(user);
  } catch (err) {
    $("side-error").textContent = err.code === "not_found" ? `No user named "${user}".` : err.message;
    return;
  }
  input.value = "";
  const conv = directConv(S.me, user);
  ensureConv(conv, { kind: "direct", peer: user });
  watchPeers([S.convs.get(conv)]);
  await openConv(conv);
}

async function createGroup(e) {
  e.preventDefault();
  const name = $("group-name").value.trim();
  const members = $("group-members").value.split(/[\s,]+/).map((s) => s.trim().toLowerCase()).filter(Boolean);
  $("side-error").textContent = "";
  if (!name) return $("group-name").focus();
  try {
    const g = await S.http.createGroup(name, members);
    onGroup({ event: "member_added", group: g, users: g.members });
    $("group-name").value = "";
    $("group-members").value = "";
    $("group-box").open = false;
    await openConv(`g:${g.id}`);
  } catch (err) {
    $("side-error").textContent = `Could not create the group: ${err.message}`;
  }
}

async function addMember(e) {
  e.preventDefault();
  const user = $("add-user").value.trim().toLowerCase();
  if (!user || !S.open?.startsWith("g:")) return;
  try {
    const g = await S.http.addMembers(S.open.slice(2), [user]);
    onGroup({ event: "updated", group: g, users: [] });
    $("add-user").value = "";
    $("add-box").open = false;
  } catch (err) {
    $("side-error").textContent = `Could not add ${user}: ${err.message}`;
  }
}

function autosize() {
  const t = $("compose");
  t.style.height = "auto";
  t.style.height = `${Math.min(t.scrollHeight, 160)}px`;
}

function wire() {
  $("auth-form").addEventListener("submit", (e) => { e.preventDefault(); void authSubmit(false); });
  $("register-btn").addEventListener("click", () => void authSubmit(true));
  $("logout-btn").addEventListener("click", () => void logout());
  $("dm-form").addEventListener("submit", startDirect);
  $("group-form").addEventListener("submit", createGroup);
  $("add-form").addEventListener("submit", addMember);
  $("back-btn").addEventListener("click", closeChat);
  $("older-btn").addEventListener("click", () => {
    const st = convState(S.open);
    const oldest = Math.min(...st.bySeq.keys());
    if (Number.isFinite(oldest)) void loadPage(S.open, oldest);
  });
  $("composer").addEventListener("submit", (e) => { e.preventDefault(); sendCurrent(); });
  $("compose").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      sendCurrent();
    } else if (e.key === "Escape" && window.matchMedia("(max-width: 720px)").matches) {
      closeChat();
    }
  });
  $("compose").addEventListener("input", () => {
    autosize();
    if (S.open && $("compose").value.trim()) S.client?.typing(S.open);
  });
  document.addEventListener("visibilitychange", () => S.open && maybeMarkRead(S.open));
}

wire();
const session = saved();
if (session) void start(session);
else {
  $("auth").hidden = false;
  $("auth-user").focus();
}
