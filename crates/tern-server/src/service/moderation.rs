//! The banned-word filter applied to message bodies on the send path
//! (`[moderation]`): one Aho-Corasick automaton over every banned word.
//!
//! Matching is ASCII case-insensitive (`Darn` matches `darn`; non-ASCII
//! letters match only as written) and by substring: a word matches anywhere,
//! also inside a longer word (`darn` matches in `darned`). Where words
//! overlap, the leftmost match wins and, among those, the longest.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use crate::config::ModerationConfig;

/// Why the filter could not be built from the config.
#[derive(Debug, thiserror::Error)]
pub enum ModerationError {
    #[error("cannot read moderation.banned_words_file {path}")]
    ReadFile {
        path: String,
        source: std::io::Error,
    },
    #[error("moderation.action {0:?} is not `reject` or `mask`")]
    UnknownAction(String),
    #[error("cannot build the banned-word matcher: {0}")]
    Build(#[from] aho_corasick::BuildError),
}

/// What the filter decided about one body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No banned word: send the body as it is.
    Clean,
    /// A banned word and `action = "reject"`: refuse the send.
    Reject,
    /// Banned words and `action = "mask"`: send this body instead.
    Masked(String),
}

/// What to do with a body that contains a banned word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Reject,
    Mask,
}

/// Banned words and the action taken on them. Cheap to check, immutable:
/// a reload builds a new filter and swaps it in.
#[derive(Debug)]
pub struct WordFilter {
    /// `None` when there are no words: every body is clean.
    matcher: Option<AhoCorasick>,
    words: usize,
    action: Action,
}

impl Default for WordFilter {
    /// No banned words: every body is clean.
    fn default() -> Self {
        Self {
            matcher: None,
            words: 0,
            action: Action::Reject,
        }
    }
}

impl WordFilter {
    /// Builds the filter from `banned_words` plus the lines of
    /// `banned_words_file` (trimmed; empty lines and `#` comments skipped).
    pub fn from_config(cfg: &ModerationConfig) -> Result<Self, ModerationError> {
        let action = match cfg.action.as_str() {
            "reject" => Action::Reject,
            "mask" => Action::Mask,
            other => return Err(ModerationError::UnknownAction(other.to_owned())),
        };
        let mut words: Vec<String> = cfg
            .banned_words
            .iter()
            .map(|w| w.trim())
            // An empty pattern would match every body at every position.
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect();
        if !cfg.banned_words_file.is_empty() {
            words.extend(read_word_file(&cfg.banned_words_file)?);
        }
        Self::from_words(words, action)
    }

    fn from_words(words: Vec<String>, action: Action) -> Result<Self, ModerationError> {
        if words.is_empty() {
            return Ok(Self {
                action,
                ..Self::default()
            });
        }
        let matcher = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .build(&words)?;
        Ok(Self {
            matcher: Some(matcher),
            words: words.len(),
            action,
        })
    }

    /// How many banned words the filter holds (duplicates included).
    pub fn len(&self) -> usize {
        self.words
    }

    /// True when the filter holds no words and passes every body.
    pub fn is_empty(&self) -> bool {
        self.matcher.is_none()
    }

    /// Checks one body. Masking replaces each match with one `*` per
    /// character (not byte) of the matched text, so the result stays UTF-8.
    pub fn check(&self, body: &str) -> Verdict {
        let Some(matcher) = &self.matcher else {
            return Verdict::Clean;
        };
        if !matcher.is_match(body) {
            return Verdict::Clean;
        }
        match self.action {
            Action::Reject => Verdict::Reject,
            Action::Mask => {
                let mut masked = String::with_capacity(body.len());
                matcher.replace_all_with(body, &mut masked, |_, text, dst| {
                    dst.extend(std::iter::repeat_n('*', text.chars().count()));
                    true
                });
                Verdict::Masked(masked)
            }
        }
    }
}

/// The words of a banned-words file: one per line, trimmed; empty lines and
/// lines starting with `#` are skipped.
fn read_word_file(path: &str) -> Result<Vec<String>, ModerationError> {
    let text = std::fs::read_to_string(path).map_err(|source| ModerationError::ReadFile {
        path: path.to_owned(),
        source,
    })?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::Write;

    use super::*;

    fn filter(words: &[&str], action: &str) -> WordFilter {
        WordFilter::from_config(&ModerationConfig {
            banned_words: words.iter().map(|w| (*w).to_owned()).collect(),
            banned_words_file: String::new(),
            action: action.into(),
        })
        .unwrap()
    }

    #[test]
    fn matches_ascii_case_insensitively_anywhere() {
        let f = filter(&["darn"], "reject");
        assert_eq!(f.check("oh DaRn it"), Verdict::Reject);
        assert_eq!(f.check("darned"), Verdict::Reject, "substring match");
        assert_eq!(f.check("oh dear"), Verdict::Clean);
        let f = filter(&["HECK"], "mask");
        assert_eq!(
            f.check("what the heck"),
            Verdict::Masked("what the ****".into())
        );
    }

    #[test]
    fn masks_one_star_per_character_and_stays_utf8() {
        let f = filter(&["café", "日本"], "mask");
        assert_eq!(
            f.check("un CAFé à 日本!"),
            Verdict::Masked("un **** à **!".into())
        );
        // Non-ASCII letters are not case-folded.
        assert_eq!(f.check("CAFÉ"), Verdict::Clean);
    }

    #[test]
    fn overlapping_words_take_the_leftmost_longest_match() {
        let f = filter(&["dar", "darn", "arnold"], "mask");
        // `darn` beats `dar` (longest); `arnold` starts later and is cut.
        assert_eq!(f.check("darnold"), Verdict::Masked("****old".into()));
        assert_eq!(f.check("arnold dar"), Verdict::Masked("****** ***".into()));
        let f = filter(&["abc", "bcd"], "mask");
        assert_eq!(f.check("abcd abcd"), Verdict::Masked("***d ***d".into()));
    }

    #[test]
    fn empty_list_is_always_clean_without_a_matcher() {
        let f = filter(&[], "reject");
        assert!(f.is_empty());
        assert_eq!(f.check("anything at all"), Verdict::Clean);
        // Blank words are dropped: they would otherwise match everything.
        let f = filter(&["", "  "], "mask");
        assert!(f.is_empty());
        assert_eq!(f.check("hello"), Verdict::Clean);
        assert_eq!(WordFilter::default().check(""), Verdict::Clean);
    }

    #[test]
    fn loads_words_from_a_file_skipping_blanks_and_comments() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(
            file,
            "# a comment\n  gosh  \n\n\t\nheck\n #indented comment"
        )
        .unwrap();
        let f = WordFilter::from_config(&ModerationConfig {
            banned_words: vec!["darn".into()],
            banned_words_file: file.path().to_string_lossy().into_owned(),
            action: "mask".into(),
        })
        .unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(
            f.check("gosh, heck, darn, comment"),
            Verdict::Masked("****, ****, ****, comment".into())
        );
    }

    #[test]
    fn an_unreadable_file_is_an_error_naming_the_path() {
        let err = WordFilter::from_config(&ModerationConfig {
            banned_words: Vec::new(),
            banned_words_file: "/nonexistent/tern-words.txt".into(),
            action: "reject".into(),
        })
        .unwrap_err();
        assert!(matches!(err, ModerationError::ReadFile { .. }));
        assert!(
            err.to_string().contains("/nonexistent/tern-words.txt"),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_action_is_an_error() {
        let err = WordFilter::from_config(&ModerationConfig {
            action: "shout".into(),
            ..ModerationConfig::default()
        })
        .unwrap_err();
        assert!(matches!(err, ModerationError::UnknownAction(_)));
    }
}
