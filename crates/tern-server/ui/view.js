// Rendering of the chat UI: pure functions from state to DOM. No framework;
// lists are rebuilt on change (they are small), scroll positions kept.

export const $ = (id) => document.getElementById(id);

/** Creates an element: h("li", {class: "x", "data-seq": 3}, child, "text"). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "onclick") el.addEventListener("click", v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** "14:05" today, "Mon 14:05" this week, else "3 Jan". */
export function shortTime(ts) {
  if (!ts) return "";
  const d = new Date(ts);
  const now = new Date();
  const hm = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (d.toDateString() === now.toDateString()) return hm;
  if (now - d < 6 * 86400e3) return `${d.toLocaleDateString([], { weekday: "short" })} ${hm}`;
  return d.toLocaleDateString([], { day: "numeric", month: "short" });
}

export function lastSeenText(p) {
  if (!p) return "";
  if (p.online) return "online";
  if (!p.last_seen) return "offline";
  return `last seen ${shortTime(p.last_seen)}`;
}

const HUES = [210, 150, 20, 280, 340, 190, 40, 100];
function hue(name) {
  let n = 0;
  for (const c of name) n = (n * 31 + c.codePointAt(0)) >>> 0;
  return HUES[n % HUES.length];
}

/** Fills an avatar element with the name's initial and a stable colour. */
export function paintAvatar(el, name, group) {
  el.textContent = group ? "#" : (name[0] ?? "?").toUpperCase();
  el.style.setProperty("--hue", String(hue(name)));
}

/** The title of a conversation entry. */
export function convTitle(c) {
  return c.kind === "group" ? c.name || "Group" : c.peer;
}

/** Rebuilds the conversation list. */
export function renderConvs(list, convs, ctx) {
  list.replaceChildren(
    ...convs.map((c) => {
      const title = convTitle(c);
      const online = c.kind === "direct" && ctx.presence.get(c.peer)?.online;
      const last = c.last
        ? `${c.last.from === ctx.me ? "You: " : c.kind === "group" ? `${c.last.from}: ` : ""}${c.last.body}`
        : c.kind === "group" ? "No messages yet" : "";
      const avatar = h("span", { class: "avatar", "aria-hidden": "true" });
      paintAvatar(avatar, title, c.kind === "group");
      const label = `${title}${online ? ", online" : ""}${c.unread ? `, ${c.unread} unread` : ""}`;
      return h("li", { "data-conv": c.conv },
        h("button", {
          type: "button", class: "conv", "aria-label": label,
          "aria-current": c.conv === ctx.open ? "true" : undefined,
          onclick: () => ctx.onOpen(c.conv),
        },
          h("span", { class: "avatar-wrap" }, avatar,
            c.kind === "direct" ? h("span", { class: `dot ${online ? "on" : "off"}`, "data-presence": online ? "online" : "offline" }) : null),
          h("span", { class: "conv-main" },
            h("span", { class: "conv-top" },
              h("span", { class: "conv-name" }, title),
              h("time", { class: "conv-time" }, shortTime(c.last?.ts))),
            h("span", { class: "conv-bottom" },
              h("span", { class: "conv-last" }, last),
              c.unread > 0 ? h("span", { class: "unread", "data-unread": c.unread }, String(c.unread)) : null))));
    }),
  );
}

/** Status of one of my messages: pending, delivered, read or failed. */
function statusMark(status) {
  switch (status) {
    case "pending": return h("span", { class: "status pending", title: "Sending", "aria-label": "sending" }, "◷");
    case "delivered": return h("span", { class: "status delivered", title: "Delivered", "aria-label": "delivered" }, "✓");
    case "read": return h("span", { class: "status read", title: "Read", "aria-label": "read" }, "✓✓");
    default: return h("span", { class: "status failed", title: "Not sent", "aria-label": "not sent" }, "!");
  }
}

/**
 * Rebuilds the message list of the open conversation. `items` are
 * {seq?, cmid, from, body, ts, status?, kind, error?} in display order.
 */
export function renderMessages(ol, scroller, items, ctx) {
  const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 60;
  const fromBottom = scroller.scrollHeight - scroller.scrollTop;
  let prevFrom = null;
  let prevDay = null;
  const nodes = [];
  for (const m of items) {
    const day = new Date(m.ts || Date.now()).toDateString();
    if (day !== prevDay) {
      nodes.push(h("li", { class: "day", role: "separator" }, new Date(m.ts || Date.now()).toLocaleDateString([], { weekday: "long", day: "numeric", month: "long" })));
      prevDay = day;
      prevFrom = null;
    }
    if (m.kind === "system") {
      nodes.push(h("li", { class: "system", "data-seq": m.seq }, m.body));
      prevFrom = null;
      continue;
    }
    const mine = m.from === ctx.me;
    const showFrom = !mine && ctx.group && m.from !== prevFrom;
    nodes.push(h("li", {
      class: `msg ${mine ? "mine" : "theirs"}${m.from === prevFrom ? " cont" : ""}`,
      "data-seq": m.seq, "data-cmid": m.cmid, "data-status": mine ? m.status : undefined,
    },
      showFrom ? h("span", { class: "from" }, m.from) : null,
      h("span", { class: "bubble" },
        h("span", { class: "body" }, m.body),
        h("span", { class: "meta" },
          h("time", { datetime: new Date(m.ts || Date.now()).toISOString() }, shortTime(m.ts || Date.now())),
          mine ? statusMark(m.status) : null)),
      m.error ? h("span", { class: "error small" }, m.error) : null));
    prevFrom = m.from;
  }
  ol.replaceChildren(...nodes);
  if (ctx.keepOffset) scroller.scrollTop = scroller.scrollHeight - fromBottom;
  else if (atBottom || ctx.forceBottom) scroller.scrollTop = scroller.scrollHeight;
}
