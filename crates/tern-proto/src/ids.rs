//! Usernames, conversation ids and client message ids, with their validation
//! (PROTOCOL.md §2 and §3).

use std::fmt;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("invalid username {0:?}: 3 to 32 of a-z 0-9 _ . - starting with a letter or digit")]
    Username(String),
    #[error("invalid conversation id {0:?}")]
    Conv(String),
    #[error("cmid must be 1 to 64 characters")]
    Cmid,
}

/// Names no one may register or authenticate as.
pub const RESERVED_USERNAMES: [&str; 2] = ["system", "admin"];

/// Checks `^[a-z0-9][a-z0-9_.-]{2,31}$`.
pub fn validate_username(name: &str) -> Result<(), IdError> {
    let bytes = name.as_bytes();
    let ok = (3..=32).contains(&bytes.len())
        && matches!(bytes[0], b'a'..=b'z' | b'0'..=b'9')
        && bytes[1..]
            .iter()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(IdError::Username(truncate(name)))
    }
}

/// True for `system` and `admin`.
pub fn is_reserved_username(name: &str) -> bool {
    RESERVED_USERNAMES.contains(&name)
}

/// Checks a client message id: 1 to 64 Unicode scalar values.
pub fn validate_cmid(cmid: &str) -> Result<(), IdError> {
    let n = cmid.chars().count();
    if (1..=crate::MAX_CMID_CHARS).contains(&n) {
        Ok(())
    } else {
        Err(IdError::Cmid)
    }
}

/// A conversation id: `d:<a>:<b>` with a ≤ b (byte order), or `g:<group id>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConvId {
    Direct { a: String, b: String },
    Group(String),
}

impl ConvId {
    /// The direct conversation of two users, in canonical order.
    pub fn direct(x: &str, y: &str) -> Self {
        let (a, b) = if x <= y { (x, y) } else { (y, x) };
        Self::Direct {
            a: a.to_owned(),
            b: b.to_owned(),
        }
    }

    /// Parses and validates a conversation id as it appears on the wire.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let bad = || IdError::Conv(truncate(s));
        if let Some(rest) = s.strip_prefix("d:") {
            let (a, b) = rest.split_once(':').ok_or_else(bad)?;
            validate_username(a).map_err(|_| bad())?;
            validate_username(b).map_err(|_| bad())?;
            if a > b {
                return Err(bad());
            }
            Ok(Self::Direct {
                a: a.to_owned(),
                b: b.to_owned(),
            })
        } else if let Some(id) = s.strip_prefix("g:") {
            let ok = (1..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if ok {
                Ok(Self::Group(id.to_owned()))
            } else {
                Err(bad())
            }
        } else {
            Err(bad())
        }
    }

    /// Whether `user` is one of the two parties of a direct conversation.
    /// Always false for groups (their membership lives in the server).
    pub fn is_direct_party(&self, user: &str) -> bool {
        matches!(self, Self::Direct { a, b } if a == user || b == user)
    }

    /// For a direct conversation seen by `user`: the other party
    /// (`user` itself for notes to self).
    pub fn peer_of(&self, user: &str) -> Option<&str> {
        match self {
            Self::Direct { a, b } if a == user => Some(b),
            Self::Direct { a, b } if b == user => Some(a),
            _ => None,
        }
    }

    pub fn is_group(&self) -> bool {
        matches!(self, Self::Group(_))
    }
}

impl fmt::Display for ConvId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Direct { a, b } => write!(f, "d:{a}:{b}"),
            Self::Group(id) => write!(f, "g:{id}"),
        }
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for ok in ["abc", "a-b", "0xy", "alice.smith_2", &"a".repeat(32)] {
            assert!(validate_username(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "Abc",
            "-ab",
            "_ab",
            "a:b",
            "ab c",
            "",
            &"a".repeat(33),
            "ümlaut",
        ] {
            assert!(validate_username(bad).is_err(), "{bad}");
        }
        assert!(is_reserved_username("system") && is_reserved_username("admin"));
    }

    #[test]
    fn conv_ids() {
        let d = ConvId::parse("d:alice:bob").unwrap();
        assert_eq!(d, ConvId::direct("bob", "alice"));
        assert_eq!(d.to_string(), "d:alice:bob");
        assert_eq!(d.peer_of("alice"), Some("bob"));
        assert_eq!(
            ConvId::parse("d:alice:alice").unwrap().peer_of("alice"),
            Some("alice")
        );
        assert!(ConvId::parse("d:bob:alice").is_err());
        assert!(ConvId::parse("d:alice").is_err());
        assert!(ConvId::parse("d:alice:bob:carl").is_err());
        assert!(ConvId::parse("x:1").is_err());
        assert!(ConvId::parse("g:").is_err());
        assert_eq!(ConvId::parse("g:x1").unwrap(), ConvId::Group("x1".into()));
    }

    #[test]
    fn cmids() {
        assert!(validate_cmid("c").is_ok());
        assert!(validate_cmid(&"é".repeat(64)).is_ok());
        assert!(validate_cmid(&"é".repeat(65)).is_err());
        assert!(validate_cmid("").is_err());
    }
}
