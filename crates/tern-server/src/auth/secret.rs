//! The HS256 secret: from the config, or generated once into
//! `<data_dir>/jwt.secret` (mode 0600) and reused on every restart.

use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::AuthSetupError;

/// File name of the generated secret inside the data directory.
pub const SECRET_FILE: &str = "jwt.secret";
/// Shortest secret accepted from the file (the generated one has 64 chars).
const MIN_FILE_SECRET_CHARS: usize = 32;

/// The secret in effect: `configured` if non-empty, else the file's.
///
/// Runs once at startup, so plain blocking file I/O is fine here.
pub fn load(configured: &str, data_dir: &str) -> Result<String, AuthSetupError> {
    if !configured.is_empty() {
        return Ok(configured.to_owned());
    }
    let dir = Path::new(data_dir);
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let path = dir.join(SECRET_FILE);
    match create(&path) {
        Ok(secret) => {
            tracing::info!(path = %path.display(), "generated a new JWT secret");
            Ok(secret)
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => read(&path),
        Err(e) => Err(io_err(&path, e)),
    }
}

/// Writes 32 random bytes, hex-encoded, to a file that must not exist yet
/// (`create_new`: two processes starting at once cannot both write it).
fn create(path: &Path) -> std::io::Result<String> {
    let secret = hex(&rand::random::<[u8; 32]>());
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(secret.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    Ok(secret)
}

/// Reads an existing secret file; refuses one that is empty, too short or
/// holds anything but visible ASCII (a truncated or foreign file).
fn read(path: &Path) -> Result<String, AuthSetupError> {
    let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
    let bad = |reason: &str| AuthSetupError::BadSecretFile {
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    };
    let text = std::str::from_utf8(&bytes).map_err(|_| bad("not UTF-8 text"))?;
    let secret = text.trim();
    if secret.len() < MIN_FILE_SECRET_CHARS {
        return Err(bad("shorter than 32 characters"));
    }
    if !secret.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("holds characters other than visible ASCII"));
    }
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "JWT secret file is readable by others; chmod 600 it");
        }
    }
    Ok(secret.to_owned())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn io_err(path: &Path, source: std::io::Error) -> AuthSetupError {
    AuthSetupError::Io {
        path: PathBuf::from(path),
        source,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn configured_secret_wins_and_touches_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let s = load("configured", data.to_str().unwrap()).unwrap();
        assert_eq!(s, "configured");
        assert!(!data.exists());
    }

    #[test]
    fn generated_once_with_mode_0600_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("nested/data");
        let first = load("", data.to_str().unwrap()).unwrap();
        assert_eq!(first.len(), 64);
        let path = data.join(SECRET_FILE);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = load("", data.to_str().unwrap()).unwrap();
        assert_eq!(first, second);
    }

    #[test]
    fn bad_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(SECRET_FILE), "short\n").unwrap();
        let err = load("", dir.path().to_str().unwrap()).unwrap_err();
        assert!(matches!(err, AuthSetupError::BadSecretFile { .. }), "{err}");
        std::fs::write(dir.path().join(SECRET_FILE), [0xffu8; 40]).unwrap();
        assert!(load("", dir.path().to_str().unwrap()).is_err());
    }
}
