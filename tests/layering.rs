//! The crate's top-level modules import one way (issue 17): this test reads every source file,
//! finds each `crate::<module>` a module uses, and fails on an import cycle between top-level
//! modules or an import from a lower layer into a higher one, beyond the known ones listed below.
//! The list only shrinks: an entry that no longer exists fails too, so it is taken out.
//! `cargo test --test layering -- --ignored --nocapture` prints the whole graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Layers, lowest first: a module may import its own layer's modules and lower ones.
const LAYERS: &[&[&str]] = &[
    &["clock", "process", "mcp"],
    &["spec"],
    &["config"],
    &["inspect"],
    &["runner"],
    &["profile", "chaos"],
    &["telemetry"],
    &["driver"],
    &["schedule", "report"],
    &["http"],
    &["daemon", "reference"],
    &["check", "demo", "login", "run"],
];

/// Imports allowed to break the layer rule, `from -> to` (upward, or one half of a cycle within a
/// layer): none since issue 17. An entry here needs an issue that removes it. Keep sorted.
const KNOWN_VIOLATIONS: &[(&str, &str)] = &[];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a source file belongs to (`src/chaos/runner.rs` -> `chaos`).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib" && name != "main").then(|| name.to_string())
}

/// Code without comments (doc links name modules without depending on them); unit tests' imports
/// count like any other.
fn code(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every top-level module named after `crate::`, including inside `use crate::{a, b::c}`.
fn imported_modules(code: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String { s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect() };
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if !rest.starts_with('{') {
            out.insert(ident(rest));
            continue;
        }
        // A group: the names right after `{` or a `,` at its first depth.
        let mut depth = 0;
        for (i, c) in rest.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                break;
            }
            if depth == 1 && (c == '{' || c == ',') {
                out.insert(ident(rest[i + 1..].trim_start()));
            }
        }
    }
    out.remove("");
    out
}

/// `from -> to -> a file of `from` that imports `to``.
fn edges() -> BTreeMap<(String, String), PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    let mut edges = BTreeMap::new();
    for file in files {
        let Some(from) = module_of(&src, &file) else { continue };
        let text = std::fs::read_to_string(&file).unwrap();
        for to in imported_modules(&code(&text)) {
            if to != from && rank(&to).is_some() {
                edges.entry((from.clone(), to)).or_insert_with(|| file.strip_prefix(&src).unwrap().to_path_buf());
            }
        }
    }
    edges
}

#[test]
fn every_top_level_module_has_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let unlayered: BTreeSet<String> =
        files.iter().filter_map(|f| module_of(&src, f)).filter(|m| rank(m).is_none()).collect();
    assert!(unlayered.is_empty(), "give these modules a layer in tests/layering.rs: {unlayered:?}");
}

#[test]
fn imports_go_one_way() {
    let edges = edges();
    let violations: BTreeMap<(String, String), &PathBuf> = edges
        .iter()
        .filter(|((from, to), _)| {
            rank(to) > rank(from) || (rank(to) == rank(from) && edges.contains_key(&(to.clone(), from.clone())))
        })
        .map(|(k, f)| (k.clone(), f))
        .collect();
    let known: BTreeSet<(String, String)> =
        KNOWN_VIOLATIONS.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    let new: Vec<String> = violations
        .iter()
        .filter(|(k, _)| !known.contains(*k))
        .map(|((from, to), file)| format!("{from} -> {to} (src/{})", file.display()))
        .collect();
    let gone: Vec<String> =
        known.iter().filter(|k| !violations.contains_key(*k)).map(|(a, b)| format!("{a} -> {b}")).collect();
    assert!(new.is_empty(), "imports from a lower layer into a higher one, or a cycle:\n{}", new.join("\n"));
    assert!(gone.is_empty(), "fixed: take these out of KNOWN_VIOLATIONS:\n{}", gone.join("\n"));
}

#[test]
fn grouped_and_nested_imports_are_found() {
    let found = imported_modules("use crate::{config::X, mcp::{a, b}, profile};\nlet x = crate::telemetry::y();");
    let expected: BTreeSet<String> = ["config", "mcp", "profile", "telemetry"].map(String::from).into();
    assert_eq!(found, expected);
}

#[test]
#[ignore = "prints the import graph: cargo test --test layering -- --ignored --nocapture"]
fn print_the_import_graph() {
    for ((from, to), file) in edges() {
        println!("{from} -> {to}  (src/{})", file.display());
    }
}
