//! The one temporary-directory type of the tests: a fresh directory under the
//! system temp dir (a `tempfile::TempDir`), removed when dropped, with the
//! small file helpers tests need. Shared by the black-box tests
//! (`tests/common`) and the unit tests (`src/test_support.rs` includes this
//! file), so there is a single place that creates and removes test dirs.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::wait::wait_until;

/// A fresh directory under the system temp dir, removed on drop.
pub struct Dir {
    /// The directory itself (kept as a plain field: tests read it directly).
    pub path: PathBuf,
    /// Owns the directory; dropping it removes the directory and its contents.
    _guard: tempfile::TempDir,
}

impl Dir {
    /// A new empty directory whose name starts with `pidzero-test-{tag}-`, so
    /// that one left behind by a killed test run says where it came from.
    pub fn new(tag: &str) -> Dir {
        let guard = tempfile::Builder::new()
            .prefix(&format!("pidzero-test-{tag}-"))
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temp dir for {tag}: {e}"));
        // tempfile makes it 0700; daemons a test runs as another user (`"user"`)
        // must still reach the scripts and files in it, as with a plain mkdir.
        fs::set_permissions(guard.path(), fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", guard.path().display()));
        Dir {
            path: guard.path().to_path_buf(),
            _guard: guard,
        }
    }

    pub fn p(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// `p(name)` as a `String`, for embedding in commands.
    pub fn s(&self, name: &str) -> String {
        self.p(name).to_str().unwrap().to_string()
    }

    pub fn exists(&self, name: &str) -> bool {
        self.p(name).exists()
    }

    pub fn read(&self, name: &str) -> String {
        fs::read_to_string(self.p(name)).unwrap_or_default()
    }

    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.p(name);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(&p, contents).unwrap();
        p
    }

    /// Writes `daemons.json` verbatim.
    pub fn daemons(&self, json: &str) -> PathBuf {
        self.write("daemons.json", json)
    }

    /// Writes `daemons.json` from a value, pretty-printed (one field per line).
    pub fn daemons_value(&self, v: &Value) -> PathBuf {
        self.write("daemons.json", &serde_json::to_string_pretty(v).unwrap())
    }

    pub fn config(&self, json: &str) -> PathBuf {
        self.write("config.json", json)
    }

    /// Writes an executable `/bin/sh` script and returns its path.
    pub fn script(&self, name: &str, body: &str) -> String {
        let p = self.write(name, &format!("#!/bin/sh\n{body}\n"));
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        p.to_str().unwrap().to_string()
    }

    /// Waits until file `name` exists.
    pub fn wait_file(&self, name: &str, timeout: Duration) {
        let p = self.p(name);
        wait_until(timeout, || p.exists())
            .unwrap_or_else(|| panic!("file {} did not appear within {timeout:?}", p.display()));
    }
}

impl AsRef<Path> for Dir {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}
