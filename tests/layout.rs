//! The layout rules of `../shared/STYLE.md` §2 that a reader cannot see at a glance,
//! checked on the source itself so a change that breaks one fails here, not in review:
//! imports between files point one way (no cycle), and the control plane's SQL lives in
//! `src/control/store/` only.
//!
//! An edge is a path a file names with `crate::`, `super::` or `self::` (in a `use` or
//! inline), resolved to the file that defines its longest module prefix. A `mod.rs` using
//! its own children by their bare names is how Rust declares modules and is not counted;
//! a child naming its parent's items is. Unit-test modules (`#[cfg(test)] mod tests`) are
//! left out: they may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

/// Every `.rs` file under `src/` by the module it defines.
fn modules() -> BTreeMap<Module, PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("src/ is readable") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    files
        .into_iter()
        .map(|path| {
            let rel = path
                .strip_prefix(&src)
                .expect("under src/")
                .with_extension("");
            let mut module: Module = rel
                .iter()
                .map(|part| part.to_string_lossy().into_owned())
                .collect();
            if matches!(
                module.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                module.pop();
            }
            (module, path)
        })
        .collect()
}

/// The source without its unit-test module and its comment lines.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("source is readable");
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => &text,
    };
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let path = tree.split(" as ").next().unwrap_or(tree).trim();
        return vec![path.to_string()];
    };
    let Some(close) = tree.rfind('}').filter(|close| *close > open) else {
        return Vec::new();
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..close];
    let mut items = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items
        .into_iter()
        .filter(|item| !item.trim().is_empty())
        .flat_map(expand)
        .map(|rest| match rest.as_str() {
            "self" => prefix.trim_end_matches("::").to_string(),
            _ => format!("{prefix}{rest}"),
        })
        .collect()
}

/// Every `crate::`/`super::`/`self::` path the code names.
fn paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = code.lines();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        let Some(tree) = ["use ", "pub use ", "pub(crate) use "]
            .iter()
            .find_map(|keyword| trimmed.strip_prefix(keyword))
        else {
            continue;
        };
        let mut statement = tree.to_string();
        while !statement.contains(';') {
            match lines.next() {
                Some(more) => statement.push_str(more),
                None => break,
            }
        }
        out.extend(expand(statement.split(';').next().unwrap_or_default()));
    }
    // Inline paths (`crate::forward::sinks::kafka::check_options(..)`).
    let bytes = code.as_bytes();
    for root in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(at) = code[from..].find(root) {
            let start = from + at;
            let boundary = start == 0
                || !(bytes[start - 1].is_ascii_alphanumeric()
                    || bytes[start - 1] == b'_'
                    || bytes[start - 1] == b':');
            let end = code[start..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .map_or(code.len(), |n| start + n);
            if boundary {
                out.push(code[start..end].trim_end_matches(':').to_string());
            }
            from = end.max(start + root.len());
        }
    }
    out
}

/// The file `path` (named in the file of `module`) points into, if another one. `super`
/// is relative to the module, whether its file is `x.rs` or `x/mod.rs`.
fn target(modules: &BTreeMap<Module, PathBuf>, module: &Module, path: &str) -> Option<Module> {
    let mut segments = path.split("::").filter(|s| !s.is_empty()).peekable();
    let mut at: Module = match segments.peek().copied() {
        Some("crate") => Vec::new(),
        Some("self") => module.clone(),
        Some("super") => module[..module.len().saturating_sub(1)].to_vec(),
        _ => return None,
    };
    segments.next();
    let mut rest: Vec<&str> = segments.collect();
    while rest.first() == Some(&"super") {
        at.pop();
        rest.remove(0);
    }
    let full: Module = at
        .into_iter()
        .chain(rest.iter().map(|s| s.to_string()))
        .collect();
    (1..=full.len())
        .rev()
        .map(|n| full[..n].to_vec())
        .find(|prefix| modules.contains_key(prefix))
        .filter(|found| found != module)
}

fn name(module: &Module) -> String {
    if module.is_empty() {
        "lib".to_string()
    } else {
        module.join("/")
    }
}

#[test]
fn imports_between_files_form_no_cycle() {
    let modules = modules();
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (module, path) in &modules {
        let targets = paths(&code(path))
            .iter()
            .filter_map(|p| target(&modules, module, p))
            .filter(|t| !t.is_empty())
            .collect();
        edges.insert(module.clone(), targets);
    }
    // A cycle exists when some module reaches itself; report each edge on one.
    let reaches = |from: &Module, to: &Module| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.clone()];
        while let Some(m) = stack.pop() {
            if &m == to {
                return true;
            }
            if seen.insert(m.clone()) {
                stack.extend(edges.get(&m).into_iter().flatten().cloned());
            }
        }
        false
    };
    let on_cycles: Vec<String> = edges
        .iter()
        .flat_map(|(from, tos)| tos.iter().map(move |to| (from, to)))
        .filter(|(from, to)| reaches(to, from))
        .map(|(from, to)| format!("{} -> {}", name(from), name(to)))
        .collect();
    assert!(
        on_cycles.is_empty(),
        "imports between files form a cycle (STYLE §2: move the type to where it belongs):\n{}",
        on_cycles.join("\n")
    );
}

#[test]
fn control_plane_sql_lives_in_its_store() {
    let offenders: Vec<String> = modules()
        .values()
        .filter(|path| !path.components().any(|c| c.as_os_str() == "store"))
        .filter(|path| code(path).contains("sqlx::query"))
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "SQL outside src/control/store/: {offenders:?}"
    );
}

#[test]
fn the_checker_sees_a_cycle_and_group_imports() {
    assert_eq!(
        expand("super::{a, b::{c, d as e}, self}"),
        ["super::a", "super::b::c", "super::b::d", "super"]
    );
    let found = paths("use crate::x::{Y, z::W};\nfn f() { crate::q::r(); }");
    assert!(found.contains(&"crate::x::Y".to_string()), "{found:?}");
    assert!(found.contains(&"crate::x::z::W".to_string()), "{found:?}");
    assert!(found.contains(&"crate::q::r".to_string()), "{found:?}");
}
