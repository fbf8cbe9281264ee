//! `docs/compatibility.md`: the peers x commands table, checked against what the peer tests
//! observe so that it cannot go stale. Each peer test calls [`assert_cell`] with the result it
//! observed; a cell that disagrees fails the test, naming the cell and the observed text.
//!
//! Regenerate the cells from a run instead of failing:
//! `MCP_CANARY_WRITE_COMPAT=1 cargo test --test compat` (tests/compat/: peer_check, peer_matrix,
//! notify_any_server).

use std::path::PathBuf;
use std::sync::Mutex;

use super::peers::Peer;

/// A column of the table, in order after `peer` and `package`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Check,
    Serve2026,
    Serve2025,
    Load,
    Notify,
    Matrix,
    Longevity,
    Chaos,
}

impl Column {
    /// The column's header in the doc.
    pub fn header(self) -> &'static str {
        match self {
            Column::Check => "check",
            Column::Serve2026 => "serve 2026-07-28",
            Column::Serve2025 => "serve 2025-11-25",
            Column::Load => "run load",
            Column::Notify => "run notify",
            Column::Matrix => "run matrix",
            Column::Longevity => "run longevity",
            Column::Chaos => "run chaos",
        }
    }
}

/// Serialises the read-modify-write of the doc under `MCP_CANARY_WRITE_COMPAT` (the tests of
/// the `compat` crate share the process; cargo runs test binaries one after the other).
static DOC: Mutex<()> = Mutex::new(());

fn doc_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/compatibility.md")
}

fn cells(line: &str) -> Option<Vec<String>> {
    let inner = line.trim().strip_prefix('|')?.strip_suffix('|')?;
    Some(inner.split('|').map(|c| c.trim().to_string()).collect())
}

/// Assert that the doc's cell (peer, column) reads `observed` and that the peer's row names its
/// package; with `MCP_CANARY_WRITE_COMPAT=1`, write it instead.
pub fn assert_cell(peer: Peer, column: Column, observed: &str) {
    let _guard = DOC.lock().unwrap_or_else(|e| e.into_inner());
    let path = doc_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let header = lines
        .iter()
        .filter_map(|l| cells(l))
        .find(|c| c.first().map(String::as_str) == Some("peer"))
        .expect("docs/compatibility.md has a table whose first column is `peer`");
    let col = header
        .iter()
        .position(|h| h == column.header())
        .unwrap_or_else(|| panic!("docs/compatibility.md: no column {:?} in {header:?}", column.header()));
    let row = lines
        .iter()
        .position(|l| cells(l).is_some_and(|c| c.first().map(String::as_str) == Some(peer.name())))
        .unwrap_or_else(|| panic!("docs/compatibility.md: no row for peer {}", peer.name()));
    let mut row_cells = cells(&lines[row]).unwrap();
    assert_eq!(row_cells.len(), header.len(), "docs/compatibility.md: row {} has the wrong cell count", peer.name());
    let package_ok = row_cells[1] == peer.package();
    if package_ok && row_cells[col] == observed {
        return;
    }
    if std::env::var("MCP_CANARY_WRITE_COMPAT").is_ok_and(|v| v == "1") {
        row_cells[1] = peer.package().to_string();
        row_cells[col] = observed.to_string();
        lines[row] = format!("| {} |", row_cells.join(" | "));
        std::fs::write(&path, lines.join("\n") + "\n").expect("write docs/compatibility.md");
        return;
    }
    assert!(
        package_ok,
        "docs/compatibility.md: peer {} is {:?} in the doc but {:?} in tests/common/peers.rs \
         (MCP_CANARY_WRITE_COMPAT=1 rewrites it)",
        peer.name(),
        row_cells[1],
        peer.package()
    );
    panic!(
        "docs/compatibility.md is stale: peer {} column {:?} reads {:?}, observed {observed:?} \
         (MCP_CANARY_WRITE_COMPAT=1 rewrites it)",
        peer.name(),
        column.header(),
        row_cells[col]
    );
}

/// Assert that the doc's table has exactly one row per peer, in `peers` order, each naming its
/// package, and no cell is empty.
pub fn assert_rows(peers: &[Peer]) {
    let text = std::fs::read_to_string(doc_path()).expect("read docs/compatibility.md");
    let rows: Vec<Vec<String>> = text
        .lines()
        .filter_map(cells)
        .filter(|c| c.first().is_some_and(|p| p != "peer" && !p.starts_with("---")))
        .collect();
    let names: Vec<(&str, &str)> = rows.iter().map(|c| (c[0].as_str(), c[1].as_str())).collect();
    let want: Vec<(&str, &str)> = peers.iter().map(|p| (p.name(), p.package())).collect();
    assert_eq!(names, want, "docs/compatibility.md: one row per peer of tests/common/peers.rs");
    assert!(rows.iter().all(|c| c.iter().all(|x| !x.is_empty())), "docs/compatibility.md: an empty cell: {rows:?}");
}
