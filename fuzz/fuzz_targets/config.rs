//! The config loader (config/load.rs): TOML text and `TERN_*` variables →
//! a validated `Config`, or an error; never a panic.
//!
//! Input: the file's text, optionally followed by a line `#ENV` and then
//! `NAME=value` lines (the process environment). Checks: no panic; a
//! configuration that loads, written back as TOML, loads to itself.
//! Inputs naming `dev/`, `proc/` or `sys/` are skipped: validation reads the
//! TLS and public-key files a config names, and `/dev/zero` would only
//! measure the disk, not the parser.
#![no_main]

use std::collections::HashMap;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tern_server::cli::ServeArgs;
use tern_server::config::load::load_from;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if ["dev/", "proc/", "sys/"].iter().any(|p| text.contains(p)) {
        return;
    }
    let (file, env_lines) = text.split_once("\n#ENV\n").unwrap_or((text, ""));
    let env: HashMap<&str, &str> = env_lines
        .lines()
        .filter_map(|l| l.split_once('='))
        .collect();
    let env = |name: &str| env.get(name).map(|v| (*v).to_owned());
    let args = ServeArgs::default();
    let Ok(config) = load_from(&args, Some((Path::new("fuzz.toml"), file)), &env) else {
        return;
    };
    let written = match toml::to_string(&config) {
        Ok(t) => t,
        Err(e) => panic!("a loaded config does not serialize: {e}"),
    };
    match load_from(&args, Some((Path::new("again.toml"), &written)), &|_| None) {
        Ok(again) => assert_eq!(again, config, "written back, the config changed"),
        Err(e) => panic!("a loaded config, written back, fails: {e}\n{written}"),
    }
});
