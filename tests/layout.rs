//! The layout rules of `../shared/STYLE.md` §2 that a reader cannot see at a glance,
//! checked on the source itself so a change that breaks one fails here, not in review:
//! imports between files point one way (no cycle); inside the control plane, `usecases`
//! imports neither `api` nor `web`, `rules` and `store` know no HTTP crate, and only
//! `api/` and `web/` build HTTP answers; the control plane's SQL lives in
//! `src/control/store/` only; and no file or function grows past what a reader takes in.
//!
//! An edge is a path a file names with `crate::`, `super::` or `self::` (in a `use` or
//! inline), resolved to the file that defines its longest module prefix. In the control
//! plane a `mod.rs` naming a child module by its bare name (`api::routes`) is an edge to
//! that child too, so a child that names its parent's items closes a cycle. Unit-test modules
//! (`#[cfg(test)] mod tests`) are left out: they may reach anywhere.

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
    let text = [
        "#[cfg(test)]\nmod tests",
        "#[cfg(all(test, unix))]\nmod tests",
    ]
    .iter()
    .filter_map(|marker| text.find(marker))
    .min()
    .map_or(text.as_str(), |at| &text[..at]);
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
    for root in ["crate::", "super::", "self::"] {
        out.extend(paths_from(code, root));
    }
    out
}

/// Every path in `code` that starts with `root` (`crate::`, `api::`) where a path may
/// start (not in the middle of another name or path), without a trailing `::`.
fn paths_from(code: &str, root: &str) -> Vec<String> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
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
    out
}

/// The child modules a `mod.rs` (or `lib.rs`) declares, by name.
fn declared_children(code: &str) -> Vec<String> {
    code.lines()
        .filter_map(|line| {
            let line = line.trim_start();
            let rest = ["pub mod ", "pub(crate) mod ", "mod "]
                .iter()
                .find_map(|keyword| line.strip_prefix(keyword))?;
            let name = rest.strip_suffix(';')?;
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
                .then(|| name.to_string())
        })
        .collect()
}

/// Paths a `mod.rs` names through its children's bare names (`api::routes(..)`,
/// `use usecases::users::NewUser`), as `self::` paths.
fn child_paths(code: &str) -> Vec<String> {
    declared_children(code)
        .iter()
        .flat_map(|child| paths_from(code, &format!("{child}::")))
        .map(|path| format!("self::{path}"))
        .collect()
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

/// Whether a `mod.rs` naming its children counts as edges: in the control plane, whose
/// `mod.rs` files are either a floor (shared items, no children used) or a roof (serving
/// or routing its children, nothing used by them). The page (`web/`) is one unit: its
/// frame re-renders a tab after a refused form, and the tabs call the frame. Elsewhere a
/// `mod.rs` is a module's public face, built from its children.
fn counts_children(module: &Module, path: &Path) -> bool {
    path.file_name().is_some_and(|f| f == "mod.rs")
        && under(module, &["control"])
        && !under(module, &["control", "web"])
}

/// Every file's imports, as the modules they point into.
fn edges() -> BTreeMap<Module, BTreeSet<Module>> {
    let modules = modules();
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (module, path) in &modules {
        let code = code(path);
        let mut named = paths(&code);
        if counts_children(module, path) {
            named.extend(child_paths(&code));
        }
        let targets = named
            .iter()
            .filter_map(|p| target(&modules, module, p))
            .filter(|t| !t.is_empty())
            .collect();
        edges.insert(module.clone(), targets);
    }
    edges
}

#[test]
fn imports_between_files_form_no_cycle() {
    let edges = edges();
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
    assert_eq!(
        child_paths("pub mod api;\nmod web;\nfn f() { api::routes(); my_api::no(); web::x::Y; }"),
        ["self::api::routes", "self::web::x::Y"]
    );
}

/// The modules under `prefix` (itself included).
fn under(module: &Module, prefix: &[&str]) -> bool {
    module.len() >= prefix.len() && module.iter().zip(prefix).all(|(a, b)| a == b)
}

#[test]
fn control_plane_use_cases_import_neither_the_api_nor_the_page() {
    let offenders: Vec<String> = edges()
        .iter()
        .filter(|(from, _)| under(from, &["control", "usecases"]))
        .flat_map(|(from, tos)| tos.iter().map(move |to| (from, to)))
        .filter(|(_, to)| under(to, &["control", "api"]) || under(to, &["control", "web"]))
        .map(|(from, to)| format!("{} -> {}", name(from), name(to)))
        .collect();
    assert!(
        offenders.is_empty(),
        "use cases are shared by the API and the page and know neither (STYLE §2):\n{}",
        offenders.join("\n")
    );
}

/// Whether `code` names an HTTP crate (`axum`, `hyper`, `http`) as a path.
fn names_http_crate(code: &str) -> bool {
    let bytes = code.as_bytes();
    ["axum::", "hyper::", "http::"].iter().any(|needle| {
        code.match_indices(needle).any(|(at, _)| {
            at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_')
        })
    })
}

#[test]
fn control_plane_rules_and_store_know_no_http() {
    let offenders: Vec<String> = modules()
        .iter()
        .filter(|(module, _)| {
            under(module, &["control", "rules"]) || under(module, &["control", "store"])
        })
        .filter(|(_, path)| names_http_crate(&without_literals(&code(path))))
        .map(|(_, path)| path.display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "the product's rules and the store know no HTTP: {offenders:?}"
    );
}

#[test]
fn only_the_api_and_the_page_build_http_answers() {
    let answer_types = ["IntoResponse", "Response", "StatusCode", "HeaderValue"];
    let offenders: Vec<String> = modules()
        .iter()
        .filter(|(module, _)| under(module, &["control"]))
        .filter(|(module, _)| {
            !under(module, &["control", "api"]) && !under(module, &["control", "web"])
        })
        .filter(|(_, path)| {
            let code = without_literals(&code(path));
            answer_types.iter().any(|t| {
                code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .any(|word| word == *t)
            })
        })
        .map(|(_, path)| path.display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "only src/control/api/ and src/control/web/ turn refusals into HTTP answers: \
         {offenders:?}"
    );
}

/// Source files a reader takes in whole: under 40 KB each.
const MAX_FILE_BYTES: u64 = 40 * 1024;
/// Functions a reader takes in at once; a longer one must be a single `match` or template
/// and say so with `// Long by design:` (why) just above it.
const MAX_FUNCTION_LINES: usize = 120;

#[test]
fn no_source_file_or_function_is_too_long_to_read() {
    let mut offenders = Vec::new();
    for path in modules().values() {
        let bytes = std::fs::metadata(path).expect("source is readable").len();
        if bytes > MAX_FILE_BYTES {
            offenders.push(format!("{}: {bytes} bytes", path.display()));
        }
        let text = std::fs::read_to_string(path).expect("source is readable");
        for (line, length) in long_functions(&text) {
            offenders.push(format!(
                "{}:{line}: a function of {length} lines",
                path.display()
            ));
        }
    }
    assert!(
        offenders.is_empty(),
        "split these (files over {MAX_FILE_BYTES} bytes, functions over \
         {MAX_FUNCTION_LINES} lines without `// Long by design:`):\n{}",
        offenders.join("\n")
    );
}

/// `(first line, length)` of every function longer than `MAX_FUNCTION_LINES` that is not
/// marked `// Long by design:` in the lines just above it.
fn long_functions(text: &str) -> Vec<(usize, usize)> {
    let original: Vec<&str> = text.lines().collect();
    let stripped = without_literals(text);
    let lines: Vec<&str> = stripped.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if !is_fn_start(line) {
            continue;
        }
        let Some(end) = body_end(&lines[i..]) else {
            continue;
        };
        let length = end + 1;
        let marked = original[i.saturating_sub(8)..i]
            .iter()
            .any(|l| l.contains("// Long by design:"));
        if length > MAX_FUNCTION_LINES && !marked {
            found.push((i + 1, length));
        }
    }
    found
}

fn is_fn_start(line: &str) -> bool {
    let mut rest = line.trim_start();
    if let Some(after) = rest.strip_prefix("pub") {
        rest = match after.strip_prefix('(') {
            Some(scoped) => scoped.split_once(')').map_or("", |(_, r)| r),
            None => after,
        }
        .trim_start();
    }
    for qualifier in ["const ", "async ", "unsafe "] {
        rest = rest.strip_prefix(qualifier).unwrap_or(rest).trim_start();
    }
    rest.starts_with("fn ")
}

/// The index (from the `fn` line) of the line that closes its body; `None` for a
/// declaration without one.
fn body_end(lines: &[&str]) -> Option<usize> {
    let mut depth = 0usize;
    let mut started = false;
    for (i, line) in lines.iter().enumerate() {
        for c in line.chars() {
            match c {
                ';' if !started => return None,
                '{' => {
                    depth += 1;
                    started = true;
                }
                '}' if started => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(i);
                    }
                }
                _ => {}
            }
        }
    }
    None
}

/// The code with comments, strings and character literals emptied (line breaks kept), so
/// braces and names inside them count for nothing.
fn without_literals(code: &str) -> String {
    let chars: Vec<char> = code.chars().collect();
    let mut out = String::with_capacity(code.len());
    let mut i = 0;
    let newlines = |from: usize, to: usize, out: &mut String| {
        for c in &chars[from..to.min(chars.len())] {
            if *c == '\n' {
                out.push('\n');
            }
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let word_before = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut j = i + 2;
            while j + 1 < chars.len() && !(chars[j] == '*' && chars[j + 1] == '/') {
                j += 1;
            }
            newlines(i, j, &mut out);
            i = j + 2;
        } else if !word_before && raw_string_start(&chars[i..]).is_some() {
            let (open, hashes) = raw_string_start(&chars[i..]).unwrap_or_default();
            let mut j = i + open;
            while j < chars.len() {
                if chars[j] == '"'
                    && chars[j + 1..]
                        .iter()
                        .take(hashes)
                        .filter(|c| **c == '#')
                        .count()
                        == hashes
                {
                    break;
                }
                j += 1;
            }
            newlines(i, j, &mut out);
            out.push_str("\"\"");
            i = j + 1 + hashes;
        } else if c == '"' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '"' {
                j += if chars[j] == '\\' { 2 } else { 1 };
            }
            newlines(i, j, &mut out);
            out.push_str("\"\"");
            i = j + 1;
        } else if c == '\'' && next == Some('\\') {
            let mut j = i + 2;
            while j < chars.len() && chars[j] != '\'' {
                j += 1;
            }
            out.push_str("' '");
            i = j + 1;
        } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            out.push_str("' '");
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// `r"`, `r#"`, `br##"`…: how many characters open the raw string, and its `#`s.
fn raw_string_start(chars: &[char]) -> Option<(usize, usize)> {
    let mut i = 0;
    if chars.first() == Some(&'b') {
        i += 1;
    }
    if chars.get(i) != Some(&'r') {
        return None;
    }
    i += 1;
    let hashes = chars[i..].iter().take_while(|c| **c == '#').count();
    (chars.get(i + hashes) == Some(&'"')).then_some((i + hashes + 1, hashes))
}

#[test]
fn the_length_checker_skips_literals_and_honours_the_mark() {
    let long_body = "    x();\n".repeat(MAX_FUNCTION_LINES);
    let plain = format!("fn f() {{\n{long_body}}}\n");
    assert_eq!(long_functions(&plain), [(1, MAX_FUNCTION_LINES + 2)]);
    let marked = format!("// Long by design: one match.\n{plain}");
    assert!(long_functions(&marked).is_empty());
    let braces_in_literals =
        "fn g() {\n    let s = \"{{{\"; let c = '{'; let r = r#\"}\"#;\n}\nfn h() {}\n";
    assert!(long_functions(braces_in_literals).is_empty());
    assert_eq!(
        body_end(
            &without_literals(braces_in_literals)
                .lines()
                .collect::<Vec<_>>()
        ),
        Some(2)
    );
    assert!(names_http_crate("use axum::Router;"));
    assert!(!names_http_crate(&without_literals(
        "let url = \"http://x\"; // axum::"
    )));
    assert!(!names_http_crate(&without_literals(
        "let url = \"hyper::x\";"
    )));
}
