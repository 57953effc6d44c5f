//! Standard input as a stream of lines, read by a plain thread (a blocking
//! read must not hold up the runtime, nor its shutdown). Works the same for
//! a terminal, `tmux send-keys` and a pipe.

use std::io::{BufRead, Read};

use tokio::sync::mpsc;

/// Longest line read; longer ones are cut there (the server refuses bodies
/// over `limits.max_body_bytes`, 16 KiB by default, anyway).
pub const MAX_LINE_BYTES: u64 = 64 * 1024;

/// Lines waiting to be handled while a command runs.
const QUEUE_LINES: usize = 64;

/// One line, or why input ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Text(String),
    /// End of input (Ctrl-D, or the pipe was closed), or a read error.
    End,
}

/// Starts the reader thread. The receiver yields lines without their
/// ending and then [`Line::End`] once.
pub fn spawn() -> mpsc::Receiver<Line> {
    let (tx, rx) = mpsc::channel(QUEUE_LINES);
    let started = std::thread::Builder::new()
        .name("tern-chat-stdin".into())
        .spawn(move || {
            let stdin = std::io::stdin();
            let mut lock = stdin.lock();
            loop {
                let line = read_line(&mut lock);
                let end = line == Line::End;
                if tx.blocking_send(line).is_err() || end {
                    return;
                }
            }
        });
    if started.is_err() {
        // Without a thread there is no input: behave as if it ended.
        let (tx, rx) = mpsc::channel(1);
        let _ = tx.try_send(Line::End);
        return rx;
    }
    rx
}

/// The next line of `input` (at most [`MAX_LINE_BYTES`], invalid UTF-8
/// replaced), or `End`.
pub fn read_line(input: &mut impl BufRead) -> Line {
    let mut buf = Vec::new();
    match input
        .by_ref()
        .take(MAX_LINE_BYTES)
        .read_until(b'\n', &mut buf)
    {
        Ok(0) | Err(_) => Line::End,
        Ok(_) => {
            while matches!(buf.last(), Some(b'\n' | b'\r')) {
                buf.pop();
            }
            Line::Text(String::from_utf8_lossy(&buf).into_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_without_endings_then_end() {
        let mut input = &b"hello\r\n\nlast"[..];
        assert_eq!(read_line(&mut input), Line::Text("hello".into()));
        assert_eq!(read_line(&mut input), Line::Text(String::new()));
        assert_eq!(read_line(&mut input), Line::Text("last".into()));
        assert_eq!(read_line(&mut input), Line::End);
    }

    #[test]
    fn long_lines_are_cut_and_bad_utf8_replaced() {
        let long = vec![b'x'; MAX_LINE_BYTES as usize + 10];
        let mut input = &long[..];
        let Line::Text(first) = read_line(&mut input) else {
            panic!("expected a line")
        };
        assert_eq!(first.len() as u64, MAX_LINE_BYTES);
        assert_eq!(read_line(&mut input), Line::Text("x".repeat(10)));
        let mut input = &[0xff, b'a', b'\n'][..];
        assert_eq!(read_line(&mut input), Line::Text("\u{fffd}a".into()));
    }
}
