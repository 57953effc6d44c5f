//! A JSON syntax check (RFC 8259) without depth or number-range limits.
//!
//! serde_json refuses some valid JSON: nesting deeper than 128, numbers
//! beyond f64, lone surrogate escapes. Such input is a bad request, not
//! garbage, so the codec uses this check to tell the two apart. Iterative,
//! so any nesting depth is fine; memory is one byte per open container.

/// True if `bytes` is one complete JSON text.
pub fn is_json(bytes: &[u8]) -> bool {
    if std::str::from_utf8(bytes).is_err() {
        return false;
    }
    let mut p = Cursor { b: bytes, i: 0 };
    let mut open: Vec<u8> = Vec::new();
    'value: loop {
        p.ws();
        let ok = match p.peek() {
            Some(b'{') => {
                p.i += 1;
                p.ws();
                if p.eat(b'}') {
                    true
                } else {
                    open.push(b'{');
                    if !p.key() {
                        return false;
                    }
                    continue 'value;
                }
            }
            Some(b'[') => {
                p.i += 1;
                p.ws();
                if p.eat(b']') {
                    true
                } else {
                    open.push(b'[');
                    continue 'value;
                }
            }
            Some(b'"') => p.string(),
            Some(b't') => p.literal(b"true"),
            Some(b'f') => p.literal(b"false"),
            Some(b'n') => p.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => p.number(),
            _ => false,
        };
        if !ok {
            return false;
        }
        // After a value: close containers until one continues with `,`.
        loop {
            p.ws();
            let Some(&container) = open.last() else {
                return p.i == p.b.len();
            };
            let close = if container == b'{' { b'}' } else { b']' };
            match p.next() {
                Some(b',') if container == b'{' => {
                    p.ws();
                    if !p.key() {
                        return false;
                    }
                    continue 'value;
                }
                Some(b',') => continue 'value,
                Some(c) if c == close => {
                    open.pop();
                }
                _ => return false,
            }
        }
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// An object key and its colon.
    fn key(&mut self) -> bool {
        if !self.string() {
            return false;
        }
        self.ws();
        self.eat(b':')
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            true
        } else {
            false
        }
    }

    fn string(&mut self) -> bool {
        if !self.eat(b'"') {
            return false;
        }
        loop {
            match self.next() {
                Some(b'"') => return true,
                Some(b'\\') => match self.next() {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {}
                    Some(b'u') => {
                        for _ in 0..4 {
                            if !self.next().is_some_and(|c| c.is_ascii_hexdigit()) {
                                return false;
                            }
                        }
                    }
                    _ => return false,
                },
                Some(c) if c < 0x20 => return false,
                Some(_) => {}
                None => return false,
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> bool {
        self.eat(b'-');
        if !self.eat(b'0') && self.digits() == 0 {
            return false;
        }
        if self.eat(b'.') && self.digits() == 0 {
            return false;
        }
        if self.eat(b'e') || self.eat(b'E') {
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if self.digits() == 0 {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::is_json;

    #[test]
    fn accepts_valid_json_serde_refuses() {
        let deep = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
        for ok in [
            &b"{}"[..],
            b" [1, -2.5e+3, \"a\\u00e9\\\"\", true, false, null, {\"k\": []}] ",
            b"1e400",
            b"\"\\ud800\"",
            b"0",
            deep.as_bytes(),
        ] {
            assert!(is_json(ok), "{}", String::from_utf8_lossy(ok));
        }
    }

    #[test]
    fn refuses_invalid_json() {
        for bad in [
            &b""[..],
            b"{",
            b"[1,]",
            b"{\"a\" 1}",
            b"{\"a\":1,}",
            b"01",
            b"1.",
            b"-",
            b"1e",
            b"tru",
            b"\"\\x\"",
            b"\"a\nb\"",
            b"{} {}",
            b"hello",
            b"[1 2]",
            b"{1:2}",
            b"\xff",
        ] {
            assert!(!is_json(bad), "{}", String::from_utf8_lossy(bad));
        }
    }
}
