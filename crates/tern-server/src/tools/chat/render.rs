//! How `tern chat` prints things: message lines, the conversation list,
//! notices and the final words when the server ends the session. Pure
//! functions of their inputs (times are shown in UTC).

use tern_proto::{Message, MessageKind};

use super::convs::Entry;

/// Characters of a message shown in a one-line notice.
const PREVIEW_CHARS: usize = 60;

/// Control characters (terminal escapes, carriage returns) from other
/// users are shown as `�`, so a message cannot repaint the screen; a tab
/// becomes a space. Newlines are kept.
pub fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' => '\n',
            '\t' => ' ',
            c if c.is_control() => '\u{fffd}',
            c => c,
        })
        .collect()
}

/// `HH:MM` (UTC) for a time today, `MM-DD HH:MM` for another day.
pub fn clock(ts_ms: i64, now_ms: i64) -> String {
    let (secs, now_secs) = (ts_ms.div_euclid(1000), now_ms.div_euclid(1000));
    let (day, now_day) = (secs.div_euclid(86_400), now_secs.div_euclid(86_400));
    let in_day = secs.rem_euclid(86_400);
    let hm = format!("{:02}:{:02}", in_day / 3600, in_day % 3600 / 60);
    if day == now_day {
        hm
    } else {
        let (_, month, dom) = civil_from_days(day);
        format!("{month:02}-{dom:02} {hm}")
    }
}

/// Year, month, day of a count of days since 1970-01-01 (proleptic
/// Gregorian; H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// One message: `[HH:MM] from: body`, further lines of the body indented
/// under the first.
pub fn message(m: &Message, now_ms: i64) -> String {
    let body = match m.kind {
        MessageKind::E2e => "(end-to-end encrypted message)".to_owned(),
        _ => sanitize(&m.body),
    };
    let from = match m.kind {
        MessageKind::System => format!("** {}", sanitize(&m.from)),
        _ => sanitize(&m.from),
    };
    let head = format!("[{}] {from}: ", clock(m.ts, now_ms));
    let indent = " ".repeat(head.chars().count());
    let mut out = head;
    for (i, line) in body.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
            out.push_str(&indent);
        }
        out.push_str(line);
    }
    out
}

/// A notice line (anything that is not a message).
pub fn notice(text: &str) -> String {
    format!("-- {text}")
}

/// How a conversation is named: the peer, or the group's name with "(group)".
pub fn title(e: &Entry) -> String {
    if e.is_group {
        format!("{} (group)", sanitize(&e.title))
    } else {
        sanitize(&e.title)
    }
}

/// The first line of a body, cut at [`PREVIEW_CHARS`].
pub fn preview(m: &Message) -> String {
    if m.kind == MessageKind::E2e {
        return "(encrypted)".into();
    }
    let first = sanitize(m.body.lines().next().unwrap_or(""));
    let mut out: String = first.chars().take(PREVIEW_CHARS).collect();
    if first.chars().count() > PREVIEW_CHARS || m.body.lines().nth(1).is_some() {
        out.push('…');
    }
    out
}

/// The numbered list; `open` is marked with `*`.
pub fn list(entries: &[Entry], open: Option<&tern_proto::ConvId>) -> Vec<String> {
    if entries.is_empty() {
        return vec![notice(
            "no conversations yet: /dm USER to start one, /group create NAME USER… for a group",
        )];
    }
    let width = entries
        .iter()
        .map(|e| title(e).chars().count())
        .max()
        .unwrap_or(0);
    let mut out = vec![notice("conversations (/open N):")];
    for (i, e) in entries.iter().enumerate() {
        let mark = if open == Some(&e.conv) { '*' } else { ' ' };
        let unread = match e.unread {
            0 => String::new(),
            n => format!("{n} unread"),
        };
        let last = e
            .last
            .as_ref()
            .map(|m| format!("{}: {}", sanitize(&m.from), preview(m)))
            .unwrap_or_default();
        let line = format!(
            "{mark}{:>3}  {:<width$}  {unread:<10}  {last}",
            i + 1,
            title(e)
        );
        out.push(line.trim_end().to_owned());
    }
    out
}

/// A message in a conversation that is not open: `[N] bob: text` for a
/// direct one, `[N] Lunch crew (group) · bob: text` for a group.
pub fn elsewhere(e: &Entry, number: usize, m: &Message) -> String {
    let place = if e.is_group {
        format!("{} · ", title(e))
    } else {
        String::new()
    };
    notice(&format!(
        "[{number}] {place}{}: {} ({} unread; /open {number})",
        sanitize(&m.from),
        preview(m),
        e.unread
    ))
}

/// The header printed when a conversation is opened.
pub fn header(e: &Entry) -> String {
    format!("== {} ({}) ==", title(e), e.conv)
}

/// Why the session ended, when the server ended it: `code` is the close
/// code, `reason` its text or the server's error message.
pub fn ended(code: u16, reason: &str) -> String {
    let reason = sanitize(reason);
    let reason = if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    };
    match code {
        4001 => {
            format!("the server refused the token (close 4001){reason}; log in again (--user NAME)")
        }
        4011 => format!(
            "disconnected by the server (close 4011: kicked by an admin, banned, or too many \
             sessions){reason}"
        ),
        _ => format!("connection closed (close {code}){reason}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tern_proto::ConvId;

    const DAY_MS: i64 = 86_400_000;

    fn msg(from: &str, body: &str, kind: MessageKind, ts: i64) -> Message {
        Message {
            conv: ConvId::direct("alice", "bob"),
            seq: 1,
            mid: "m".into(),
            from: from.into(),
            body: body.into(),
            kind,
            ts,
            cmid: "c".into(),
            meta: None,
        }
    }

    #[test]
    fn clock_today_and_other_days() {
        // 2025-11-21 00:00:00 UTC is day 20413.
        let midnight = 20_413 * DAY_MS;
        let t = midnight + (13 * 3600 + 5 * 60 + 59) * 1000;
        assert_eq!(clock(t, t + 1000), "13:05");
        assert_eq!(clock(t, t + DAY_MS), "11-21 13:05");
        assert_eq!(clock(0, DAY_MS), "01-01 00:00");
        assert_eq!(civil_from_days(20_413), (2025, 11, 21));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn message_lines_are_sanitized_and_indented() {
        let t = 20_413 * DAY_MS + 9 * 3_600_000;
        let m = msg("bob", "hi\x1b[2J\tthere\r", MessageKind::Text, t);
        assert_eq!(message(&m, t), "[09:00] bob: hi\u{fffd}[2J there\u{fffd}");
        let m = msg("bob", "one\ntwo", MessageKind::Text, t);
        assert_eq!(message(&m, t), "[09:00] bob: one\n             two");
        let m = msg("system", "maintenance", MessageKind::System, t);
        assert_eq!(message(&m, t), "[09:00] ** system: maintenance");
        let m = msg("bob", "q29tcHV0ZXI=", MessageKind::E2e, t);
        assert!(message(&m, t).ends_with("bob: (end-to-end encrypted message)"));
    }

    #[test]
    fn list_and_notices() {
        let dm = ConvId::direct("alice", "bob");
        let mut bob = Entry::new(dm.clone(), "bob".into());
        bob.unread = 2;
        bob.last = Some(msg("bob", &"x".repeat(70), MessageKind::Text, 0));
        let group = Entry::new(ConvId::Group("g1".into()), "Lunch crew".into());
        let lines = list(&[bob.clone(), group.clone()], Some(&dm));
        assert_eq!(lines[0], "-- conversations (/open N):");
        assert!(lines[1].starts_with("*  1  bob"), "{}", lines[1]);
        assert!(lines[1].contains("2 unread"));
        assert!(
            lines[1].ends_with(&format!("bob: {}…", "x".repeat(60))),
            "{}",
            lines[1]
        );
        assert_eq!(lines[2], "   2  Lunch crew (group)");
        assert!(list(&[], None)[0].contains("/dm USER"));

        let m = msg("bob", "lunch?\nat noon", MessageKind::Text, 0);
        assert_eq!(
            elsewhere(&bob, 1, &m),
            "-- [1] bob: lunch?… (2 unread; /open 1)"
        );
        assert_eq!(
            elsewhere(&group, 2, &m),
            "-- [2] Lunch crew (group) · bob: lunch?… (0 unread; /open 2)"
        );
        assert_eq!(header(&group), "== Lunch crew (group) (g:g1) ==");
    }

    #[test]
    fn endings_name_the_close_code() {
        assert!(ended(4011, "kicked").contains("4011"));
        assert!(ended(4011, "").ends_with("sessions)"));
        let refused = ended(4001, "invalid or expired token");
        assert!(refused.contains("4001") && refused.contains("invalid or expired token"));
        assert_eq!(
            ended(1006, "gave up"),
            "connection closed (close 1006): gave up"
        );
    }
}
