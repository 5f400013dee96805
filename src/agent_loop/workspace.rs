//! Workspace confinement: every path a tool touches is resolved here, and
//! nothing outside the workspace root can be read or written.
//!
//! [`Workspace::resolve`] takes the path the model wrote (relative to the
//! root) and returns the real path to use, or a [`ConfinementError`]:
//!
//! - absolute paths (`/etc/passwd`), home paths (`~/.ssh/x`) and NUL bytes
//!   are refused outright;
//! - `.` and `..` are applied lexically; a `..` that would climb above the
//!   root is refused (`../x`, `a/../../x`);
//! - the existing part of the path is then walked one component at a time
//!   from the canonical root: every symbolic link met on the way (an
//!   ancestor or the final component) is canonicalized and must land inside
//!   the root, and a dangling link is refused (writing through it would
//!   create its target wherever it points). The returned path has every link
//!   resolved, so the caller opens a path with no link left in it;
//! - writes into a `.git` directory (at any depth, any letter case, also when
//!   reached through a link) are refused: the repository's internals are the
//!   orchestrator's, not the agent's.
//!
//! What is not covered: a file that a process outside the tools swaps for a
//! link between the check and the use (the tools run one at a time and the
//! commands they start are killed with their process group), and hard links
//! (the file tools replace files by renaming a new file over them, which
//! breaks a hard link instead of writing through it).

use std::io;
use std::path::{Component, Path, PathBuf};

/// How a resolved path will be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reading (files, directory listings, searches).
    Read,
    /// Creating, replacing or editing a file.
    Write,
}

/// Why a path was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfinementError {
    /// The path is empty.
    #[error("the path is empty")]
    Empty,
    /// The path holds a NUL byte.
    #[error("the path contains a NUL byte")]
    Nul,
    /// The path is absolute.
    #[error("`{0}` is an absolute path; use a path relative to the workspace root")]
    Absolute(String),
    /// The path starts with `~` (a home directory).
    #[error("`{0}` refers to a home directory; use a path relative to the workspace root")]
    Home(String),
    /// A `..` leaves the workspace.
    #[error("`{0}` leaves the workspace")]
    Escapes(String),
    /// A symbolic link on the path points outside the workspace.
    #[error("`{path}` goes through the symbolic link `{link}`, which points outside the workspace")]
    SymlinkEscape {
        /// The path as given.
        path: String,
        /// The offending link, relative to the root.
        link: String,
    },
    /// A symbolic link on the path points nowhere (or cannot be resolved).
    #[error("`{path}` goes through the symbolic link `{link}`, which cannot be resolved")]
    DanglingSymlink {
        /// The path as given.
        path: String,
        /// The offending link, relative to the root.
        link: String,
    },
    /// A write into a `.git` directory.
    #[error("`{0}` is inside a `.git` directory, which tools may not write to")]
    GitInternals(String),
    /// The file system could not be inspected.
    #[error("cannot inspect `{path}`: {message}")]
    Io {
        /// The path as given.
        path: String,
        /// The I/O error.
        message: String,
    },
}

/// The directory tools are confined to.
#[derive(Debug, Clone)]
pub struct Workspace {
    root: PathBuf,
}

impl Workspace {
    /// A workspace rooted at `root`, which must exist (it is canonicalized).
    pub fn new(root: &Path) -> io::Result<Workspace> {
        let root = root.canonicalize()?;
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a directory", root.display()),
            ));
        }
        Ok(Workspace { root })
    }

    /// The canonical root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path relative to the root, for messages (`.` for the root itself).
    pub fn display_relative(&self, path: &Path) -> String {
        match path.strip_prefix(&self.root) {
            Ok(rel) if rel.as_os_str().is_empty() => ".".to_string(),
            Ok(rel) => rel.display().to_string(),
            Err(_) => path.display().to_string(),
        }
    }

    /// Resolves `relative` (as the model wrote it) to a real path inside the
    /// workspace, with every symbolic link resolved; see the module docs.
    pub fn resolve(&self, relative: &str, access: Access) -> Result<PathBuf, ConfinementError> {
        let given = relative.to_string();
        if relative.is_empty() {
            return Err(ConfinementError::Empty);
        }
        if relative.contains('\0') {
            return Err(ConfinementError::Nul);
        }
        if relative.starts_with('~') {
            return Err(ConfinementError::Home(given));
        }
        // Lexical normalisation: `.` dropped, `..` pops (never above the root).
        let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
        for component in Path::new(relative).components() {
            match component {
                Component::Prefix(_) | Component::RootDir => {
                    return Err(ConfinementError::Absolute(given));
                }
                Component::CurDir => {}
                Component::ParentDir => {
                    if parts.pop().is_none() {
                        return Err(ConfinementError::Escapes(given));
                    }
                }
                Component::Normal(name) => parts.push(name),
            }
        }

        // Walk the existing part from the canonical root, resolving links.
        let mut current = self.root.clone();
        let mut rest = parts.iter();
        for name in rest.by_ref() {
            let candidate = current.join(name);
            match std::fs::symlink_metadata(&candidate) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    current = candidate;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
                    // A file used as a directory: the tool's own I/O reports it.
                    current = candidate;
                    break;
                }
                Err(e) => {
                    return Err(ConfinementError::Io {
                        path: given,
                        message: e.to_string(),
                    });
                }
                Ok(meta) if meta.file_type().is_symlink() => {
                    let link = self.display_relative(&candidate);
                    let target = candidate.canonicalize().map_err(|_| {
                        ConfinementError::DanglingSymlink {
                            path: given.clone(),
                            link: link.clone(),
                        }
                    })?;
                    if !target.starts_with(&self.root) {
                        return Err(ConfinementError::SymlinkEscape { path: given, link });
                    }
                    current = target;
                }
                Ok(_) => current = candidate,
            }
        }
        // Whatever is left does not exist yet: it holds no links and no `..`.
        for name in rest {
            current.push(name);
        }

        if access == Access::Write {
            let inside_git = current.strip_prefix(&self.root).is_ok_and(|rel| {
                rel.components().any(|c| {
                    matches!(c, Component::Normal(n) if n.to_string_lossy().eq_ignore_ascii_case(".git"))
                })
            });
            if inside_git {
                return Err(ConfinementError::GitInternals(given));
            }
        }
        if !current.starts_with(&self.root) {
            // Cannot happen after the checks above; kept as the last line of defence.
            return Err(ConfinementError::Escapes(given));
        }
        Ok(current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn setup() -> (tempfile::TempDir, tempfile::TempDir, Workspace) {
        let ws_dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let ws = Workspace::new(ws_dir.path()).unwrap();
        (ws_dir, outside, ws)
    }

    #[test]
    fn new_requires_an_existing_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Workspace::new(&dir.path().join("missing")).is_err());
        std::fs::write(dir.path().join("f"), "x").unwrap();
        assert!(Workspace::new(&dir.path().join("f")).is_err());
        let ws = Workspace::new(dir.path()).unwrap();
        assert_eq!(ws.root(), dir.path().canonicalize().unwrap());
    }

    #[test]
    fn plain_relative_paths_resolve_inside() {
        let (_d, _o, ws) = setup();
        std::fs::create_dir(ws.root().join("a")).unwrap();
        assert_eq!(
            ws.resolve("a/b.txt", Access::Write).unwrap(),
            ws.root().join("a/b.txt")
        );
        assert_eq!(
            ws.resolve("./a/../c/d", Access::Write).unwrap(),
            ws.root().join("c/d")
        );
        assert_eq!(ws.resolve(".", Access::Read).unwrap(), ws.root());
        assert_eq!(ws.resolve("a/..", Access::Read).unwrap(), ws.root());
    }

    #[test]
    fn absolute_home_nul_and_empty_are_refused() {
        let (_d, _o, ws) = setup();
        assert!(matches!(
            ws.resolve("/etc/passwd", Access::Read),
            Err(ConfinementError::Absolute(_))
        ));
        assert!(matches!(
            ws.resolve("~/.ssh/x", Access::Write),
            Err(ConfinementError::Home(_))
        ));
        assert_eq!(ws.resolve("a\0b", Access::Read), Err(ConfinementError::Nul));
        assert_eq!(ws.resolve("", Access::Read), Err(ConfinementError::Empty));
    }

    #[test]
    fn dot_dot_above_the_root_is_refused() {
        let (_d, _o, ws) = setup();
        for p in ["..", "../x", "a/../../x", "a/b/../../../x", "./../x"] {
            assert!(
                matches!(
                    ws.resolve(p, Access::Read),
                    Err(ConfinementError::Escapes(_))
                ),
                "{p}"
            );
        }
    }

    #[test]
    fn symlinked_ancestor_pointing_outside_is_refused() {
        let (_d, outside, ws) = setup();
        symlink(outside.path(), ws.root().join("link")).unwrap();
        for access in [Access::Read, Access::Write] {
            assert!(matches!(
                ws.resolve("link/file", access),
                Err(ConfinementError::SymlinkEscape { .. })
            ));
            assert!(matches!(
                ws.resolve("link", access),
                Err(ConfinementError::SymlinkEscape { .. })
            ));
        }
    }

    #[test]
    fn symlinked_file_pointing_outside_is_refused() {
        let (_d, outside, ws) = setup();
        let target = outside.path().join("secret");
        std::fs::write(&target, "s").unwrap();
        symlink(&target, ws.root().join("f")).unwrap();
        assert!(matches!(
            ws.resolve("f", Access::Write),
            Err(ConfinementError::SymlinkEscape { .. })
        ));
        assert!(matches!(
            ws.resolve("f", Access::Read),
            Err(ConfinementError::SymlinkEscape { .. })
        ));
    }

    #[test]
    fn dangling_symlink_is_refused() {
        let (_d, outside, ws) = setup();
        symlink(outside.path().join("new"), ws.root().join("d")).unwrap();
        assert!(matches!(
            ws.resolve("d", Access::Write),
            Err(ConfinementError::DanglingSymlink { .. })
        ));
        assert!(matches!(
            ws.resolve("d/x", Access::Write),
            Err(ConfinementError::DanglingSymlink { .. })
        ));
    }

    #[test]
    fn symlinks_inside_resolve_to_their_target() {
        let (_d, _o, ws) = setup();
        std::fs::create_dir(ws.root().join("real")).unwrap();
        symlink(ws.root().join("real"), ws.root().join("alias")).unwrap();
        symlink("real", ws.root().join("rel_alias")).unwrap();
        assert_eq!(
            ws.resolve("alias/x", Access::Write).unwrap(),
            ws.root().join("real/x")
        );
        assert_eq!(
            ws.resolve("rel_alias/x", Access::Write).unwrap(),
            ws.root().join("real/x")
        );
    }

    #[test]
    fn relative_symlink_climbing_out_is_refused() {
        let (d, _o, ws) = setup();
        std::fs::create_dir(ws.root().join("a")).unwrap();
        symlink("../..", ws.root().join("a/up")).unwrap();
        assert!(matches!(
            ws.resolve("a/up/etc", Access::Read),
            Err(ConfinementError::SymlinkEscape { .. })
        ));
        drop(d);
    }

    #[test]
    fn git_internals_are_read_only() {
        let (_d, _o, ws) = setup();
        std::fs::create_dir(ws.root().join(".git")).unwrap();
        assert!(ws.resolve(".git/config", Access::Read).is_ok());
        for p in [".git/config", ".git", "sub/.git/hooks/pre-commit", ".GIT/x"] {
            assert!(
                matches!(
                    ws.resolve(p, Access::Write),
                    Err(ConfinementError::GitInternals(_))
                ),
                "{p}"
            );
        }
        // Through a link to `.git`.
        symlink(ws.root().join(".git"), ws.root().join("g")).unwrap();
        assert!(matches!(
            ws.resolve("g/hooks/x", Access::Write),
            Err(ConfinementError::GitInternals(_))
        ));
        // `.gitignore` is fine.
        assert!(ws.resolve(".gitignore", Access::Write).is_ok());
    }
}
