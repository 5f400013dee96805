//! Whether a changed file lies inside an agent's scope.
//!
//! Scope paths are folders or files relative to the repository root (`.` or
//! no scope at all means the whole repository). A file is inside when one of
//! the scope paths is the file itself or one of its parent folders, compared
//! component by component (`svc` covers `svc/a.rs`, not `svc2/a.rs`).

/// Path components without empty and `.` parts, `\` read as `/`.
fn components(path: &str) -> Vec<&str> {
    path.split(['/', '\\'])
        .filter(|c| !c.is_empty() && *c != ".")
        .collect()
}

/// The files of `changed` outside every path of `scope` (none when `scope` is empty).
pub fn outside<'a>(scope: &[String], changed: &'a [String]) -> Vec<&'a str> {
    if scope.is_empty() {
        return Vec::new();
    }
    let scopes: Vec<Vec<&str>> = scope.iter().map(|s| components(s)).collect();
    changed
        .iter()
        .filter(|file| {
            let file = components(file);
            !scopes.iter().any(|s| file.starts_with(s))
        })
        .map(String::as_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn folders_cover_their_files_only() {
        let changed = strings(&["svc/a.rs", "svc2/b.rs", "svc", "docs/x.md", "./svc/c/d.rs"]);
        assert_eq!(
            outside(&strings(&["svc/"]), &changed),
            ["svc2/b.rs", "docs/x.md"]
        );
    }

    #[test]
    fn the_root_or_no_scope_covers_everything() {
        let changed = strings(&["a", "b/c"]);
        assert!(outside(&strings(&["."]), &changed).is_empty());
        assert!(outside(&[], &changed).is_empty());
    }

    #[test]
    fn several_scopes_add_up() {
        let changed = strings(&["api/x", "web/y", "db/z"]);
        assert_eq!(outside(&strings(&["api", "web"]), &changed), ["db/z"]);
    }
}
