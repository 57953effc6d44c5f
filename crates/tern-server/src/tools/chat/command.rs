//! What a line typed into `tern chat` means: a message to send, or one of
//! the `/` commands. Pure parsing, no I/O.

/// One input line, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A blank line: nothing to do.
    Nothing,
    /// Text to send to the open conversation (`//x` sends `/x`).
    Text(String),
    Help,
    /// `/list`: the conversations with unread counts.
    List,
    /// `/open N`, `/open d:alice:bob`, `/open bob` or `/open "Group name"`.
    Open(String),
    /// `/dm USER`: the direct conversation with USER.
    Dm(String),
    /// `/more`: older messages of the open conversation.
    More,
    /// `/typing`: tell the others you are typing.
    Typing,
    /// `/close`: leave the open conversation (messages then come as notices).
    Close,
    /// `/group create NAME USER…`.
    GroupCreate {
        name: String,
        members: Vec<String>,
    },
    /// `/group add USER…` to the open group.
    GroupAdd(Vec<String>),
    /// `/group leave` the open group.
    GroupLeave,
    Quit,
}

/// The `/help` text, one command per line.
pub const HELP: &str = "\
commands:
  /list                      conversations, with unread counts
  /open N | NAME | CONV-ID   open one (N from /list, a user, a group name or d:…/g:…)
  /dm USER                   open the direct conversation with USER
  /more                      older messages of the open conversation
  /typing                    tell the others you are typing (at most once per --typing-every)
  /close                     close the open conversation
  /group create NAME USER…   create a group (quote a NAME with spaces: \"Lunch crew\") and open it
  /group add USER…           add members to the open group
  /group leave               leave the open group
  /help                      this text
  /quit                      exit (also Ctrl-D)
any other line is sent to the open conversation; start it with // to send a line beginning with /";

/// Understands one line (without its line ending).
pub fn parse(line: &str) -> Result<Input, String> {
    let trimmed = line.trim();
    if trimmed.is_empty() {
        return Ok(Input::Nothing);
    }
    if trimmed.starts_with("//") {
        return Ok(Input::Text(line.trim_start()[1..].to_owned()));
    }
    let Some(command) = trimmed.strip_prefix('/') else {
        return Ok(Input::Text(line.to_owned()));
    };
    let (word, rest) = match command.split_once(char::is_whitespace) {
        Some((w, r)) => (w, r.trim()),
        None => (command, ""),
    };
    let no_args = |input: Input| {
        if rest.is_empty() {
            Ok(input)
        } else {
            Err(format!("/{word} takes no arguments"))
        }
    };
    match word {
        "help" | "h" | "?" => no_args(Input::Help),
        "list" | "l" | "ls" => no_args(Input::List),
        "more" | "m" => no_args(Input::More),
        "typing" | "t" => no_args(Input::Typing),
        "close" => no_args(Input::Close),
        "quit" | "q" | "exit" => no_args(Input::Quit),
        "open" | "o" => match unquote(rest)? {
            (target, "") if !target.is_empty() => Ok(Input::Open(target)),
            _ => Err("usage: /open N | NAME | CONV-ID".into()),
        },
        "dm" => match words(rest).as_slice() {
            [user] => Ok(Input::Dm(user.clone())),
            _ => Err("usage: /dm USER".into()),
        },
        "group" | "g" => group(rest),
        _ => Err(format!("unknown command /{word}; /help lists them")),
    }
}

fn group(rest: &str) -> Result<Input, String> {
    let (sub, args) = match rest.split_once(char::is_whitespace) {
        Some((s, a)) => (s, a.trim()),
        None => (rest, ""),
    };
    match sub {
        "create" => {
            let (name, tail) = unquote(args)?;
            if name.is_empty() {
                return Err("usage: /group create NAME USER…".into());
            }
            Ok(Input::GroupCreate {
                name,
                members: words(tail),
            })
        }
        "add" => match words(args) {
            users if users.is_empty() => Err("usage: /group add USER…".into()),
            users => Ok(Input::GroupAdd(users)),
        },
        "leave" if args.is_empty() => Ok(Input::GroupLeave),
        "leave" => Err("/group leave takes no arguments (it leaves the open group)".into()),
        _ => Err("usage: /group create NAME USER… | /group add USER… | /group leave".into()),
    }
}

/// Whitespace-separated words.
fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

/// The first word of `text`, or the text between double quotes when it
/// starts with one, and what follows it (trimmed).
fn unquote(text: &str) -> Result<(String, &str), String> {
    let text = text.trim();
    if let Some(quoted) = text.strip_prefix('"') {
        let (inner, tail) = quoted
            .split_once('"')
            .ok_or_else(|| "a closing \" is missing".to_owned())?;
        return Ok((inner.trim().to_owned(), tail.trim()));
    }
    match text.split_once(char::is_whitespace) {
        Some((first, tail)) => Ok((first.to_owned(), tail.trim())),
        None => Ok((text.to_owned(), "")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn text_and_blank_lines() {
        assert_eq!(parse("").unwrap(), Input::Nothing);
        assert_eq!(parse("   \t").unwrap(), Input::Nothing);
        assert_eq!(
            parse("hello  there ").unwrap(),
            Input::Text("hello  there ".into())
        );
        assert_eq!(
            parse("//etc/passwd").unwrap(),
            Input::Text("/etc/passwd".into())
        );
        assert_eq!(parse("  //x y").unwrap(), Input::Text("/x y".into()));
        assert_eq!(parse("a /quit").unwrap(), Input::Text("a /quit".into()));
    }

    #[test]
    fn simple_commands_and_aliases() {
        assert_eq!(parse("/help").unwrap(), Input::Help);
        assert_eq!(parse("/list").unwrap(), Input::List);
        assert_eq!(parse("/l").unwrap(), Input::List);
        assert_eq!(parse(" /quit ").unwrap(), Input::Quit);
        assert_eq!(parse("/exit").unwrap(), Input::Quit);
        assert_eq!(parse("/more").unwrap(), Input::More);
        assert_eq!(parse("/typing").unwrap(), Input::Typing);
        assert_eq!(parse("/close").unwrap(), Input::Close);
        assert!(parse("/quit now").is_err());
        let unknown = parse("/frobnicate").unwrap_err();
        assert!(unknown.contains("/frobnicate") && unknown.contains("/help"));
    }

    #[test]
    fn open_and_dm() {
        assert_eq!(parse("/open 2").unwrap(), Input::Open("2".into()));
        assert_eq!(
            parse("/o d:alice:bob").unwrap(),
            Input::Open("d:alice:bob".into())
        );
        assert_eq!(
            parse("/open \"Lunch crew\"").unwrap(),
            Input::Open("Lunch crew".into())
        );
        assert!(parse("/open").is_err());
        assert!(parse("/open a b").is_err());
        assert!(parse("/open \"unclosed").is_err());
        assert_eq!(parse("/dm bob").unwrap(), Input::Dm("bob".into()));
        assert!(parse("/dm").is_err());
        assert!(parse("/dm bob carol").is_err());
    }

    #[test]
    fn group_commands() {
        assert_eq!(
            parse("/group create lunch bob carol").unwrap(),
            Input::GroupCreate {
                name: "lunch".into(),
                members: s(&["bob", "carol"])
            }
        );
        assert_eq!(
            parse("/group create \"Lunch crew\"   bob").unwrap(),
            Input::GroupCreate {
                name: "Lunch crew".into(),
                members: s(&["bob"])
            }
        );
        assert_eq!(
            parse("/g create solo").unwrap(),
            Input::GroupCreate {
                name: "solo".into(),
                members: vec![]
            }
        );
        assert_eq!(
            parse("/group add dave erin").unwrap(),
            Input::GroupAdd(s(&["dave", "erin"]))
        );
        assert_eq!(parse("/group leave").unwrap(), Input::GroupLeave);
        for bad in [
            "/group",
            "/group create",
            "/group add",
            "/group leave x",
            "/group kick bob",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
