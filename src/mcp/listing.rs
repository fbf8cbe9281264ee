//! Bounded list operations (`tools/list`, `resources/list`, `resources/templates/list`,
//! `prompts/list`). Pages are processed as they arrive: every item is counted and hashed from
//! its JSON text (never parsed whole into a `serde_json::Value`), and only a bounded inventory is
//! kept. A listing's memory is one page's body (at most `max_response_bytes`) plus the kept
//! inventory (`MAX_KEPT_ITEMS` and `MAX_KEPT_BYTES`), whatever the server lists; the bytes read
//! for one listing are bounded by `MAX_LISTING_BYTES`.

use super::McpError;
use super::protocol::snippet;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;
use std::hash::{Hash, Hasher};

/// Items a listing keeps (the first ones listed); the rest are counted and hashed only.
pub const MAX_KEPT_ITEMS: usize = 1_000;
/// Estimated parsed size (`parsed_size`) of the kept items of one listing; the first item that
/// would go over it, and every later one, is counted and hashed only.
pub const MAX_KEPT_BYTES: usize = 1024 * 1024;
/// Bytes of page results one listing reads at most (or one `max_response_bytes`, when larger):
/// a listing over it fails as `body_too_large` (`McpError::Oversized`), whatever its page count.
pub const MAX_LISTING_BYTES: usize = 32 * 1024 * 1024;
/// Estimated memory of one JSON value once parsed into a `serde_json::Value`, beyond its text
/// (the enum, a map entry or vector slot, allocation overhead); a conservative average.
pub const VALUE_NODE_BYTES: usize = 64;

/// What is listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ListKind {
    Tools,
    Resources,
    ResourceTemplates,
    Prompts,
}

impl ListKind {
    pub fn method(self) -> &'static str {
        use super::protocol::method;
        match self {
            Self::Tools => method::TOOLS_LIST,
            Self::Resources => method::RESOURCES_LIST,
            Self::ResourceTemplates => method::RESOURCE_TEMPLATES_LIST,
            Self::Prompts => method::PROMPTS_LIST,
        }
    }

    /// The result member holding the page's items.
    pub fn key(self) -> &'static str {
        match self {
            Self::Tools => "tools",
            Self::Resources => "resources",
            Self::ResourceTemplates => "resourceTemplates",
            Self::Prompts => "prompts",
        }
    }

    /// The item members the listing hash covers: an item's contract with its callers. For a
    /// tool: its name, title, description (what a model reads to decide to call it), input and
    /// output schemas and annotations (read-only, destructive, ...); not `_meta` or `icons`,
    /// which servers may vary without changing the tool.
    pub fn contract(self) -> &'static [&'static str] {
        match self {
            Self::Tools => &["name", "title", "description", "inputSchema", "outputSchema", "annotations"],
            Self::Resources => &["uri", "name", "title", "description", "mimeType", "annotations"],
            Self::ResourceTemplates => &["uriTemplate", "name", "title", "description", "mimeType", "annotations"],
            Self::Prompts => &["name", "title", "description", "arguments"],
        }
    }
}

/// A whole listing, all pages: the true item count and hash, and the first items kept.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Listing {
    /// The first items listed, at most `MAX_KEPT_ITEMS` and `MAX_KEPT_BYTES`.
    pub items: Vec<Item>,
    /// Every item listed, on all pages read.
    pub total: usize,
    /// Order-independent hash of every item's contract members (`ListKind::contract`); a
    /// change between listings is drift.
    pub hash: u64,
    /// Pages read.
    pub pages: usize,
    /// Bytes of page results read.
    pub bytes: usize,
    /// The server still had a `nextCursor` after `MAX_PAGES` pages: `total` counts the pages read.
    pub truncated: bool,
}

impl Listing {
    /// Items listed (all, not only those kept).
    pub fn len(&self) -> usize {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Whether every listed item was kept.
    pub fn kept_all(&self) -> bool {
        self.items.len() == self.total
    }

    /// The kept items, each parsed as it is reached (a search for the first match parses no
    /// more than it needs).
    pub fn values(&self) -> impl Iterator<Item = Value> + '_ {
        self.items.iter().map(Item::value)
    }
}

/// One kept item: the JSON text the server sent for it, already checked, parsed when read. A
/// prober lists every cycle and reads one item or none; a tree of values per kept item was the
/// largest allocation of a cycle.
#[derive(Clone, Debug, PartialEq)]
pub struct Item(Box<str>);

impl Item {
    pub fn value(&self) -> Value {
        // Checked JSON when kept (`Accumulator::item`), so this parse does not fail.
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }
}

/// What a page said besides its items.
#[derive(Debug, Default, PartialEq)]
pub struct PageEnd {
    pub next_cursor: Option<String>,
    /// An `InputRequiredResult` (2026-07-28) instead of a page.
    pub input_required: bool,
}

/// Builds a `Listing` page by page.
#[derive(Debug)]
pub struct Accumulator {
    kind: ListKind,
    budget: usize,
    listing: Listing,
    kept_bytes: usize,
    keeping: bool,
    sum: u64,
}

impl Accumulator {
    /// `budget`: bytes of page results the listing may read.
    pub fn new(kind: ListKind, budget: usize) -> Self {
        Self { kind, budget, listing: Listing::default(), kept_bytes: 0, keeping: true, sum: 0 }
    }

    /// Take one page's result (its JSON text).
    pub fn page(&mut self, result: &str) -> Result<PageEnd, McpError> {
        self.listing.pages += 1;
        self.listing.bytes = self.listing.bytes.saturating_add(result.len());
        if self.listing.bytes > self.budget {
            return Err(McpError::Oversized(format!(
                "{} over the {}-byte listing budget after {} pages and {} items",
                self.kind.method(),
                self.budget,
                self.listing.pages,
                self.listing.total
            )));
        }
        let mut de = serde_json::Deserializer::from_str(result);
        let mut end = PageEnd::default();
        let mut failure = None;
        let seed = PageSeed { acc: self, end: &mut end, failure: &mut failure };
        let parsed = seed.deserialize(&mut de).and_then(|()| de.end());
        if let Some(e) = failure {
            return Err(e);
        }
        parsed.map_err(|e| {
            McpError::InvalidJson(format!("{} result: {}: {}", self.kind.method(), e, snippet(result, 80)))
        })?;
        Ok(end)
    }

    /// Take one item (its JSON text).
    fn item(&mut self, raw: &str) -> Result<(), McpError> {
        let mut de = serde_json::Deserializer::from_str(raw);
        let (fingerprint, nodes) = ItemSeed(self.kind.contract())
            .deserialize(&mut de)
            .map_err(|e| McpError::InvalidJson(format!("{} item: {e}", self.kind.method())))?;
        self.listing.total += 1;
        self.sum = self.sum.wrapping_add(fingerprint);
        let cost = raw.len().saturating_add(nodes.saturating_mul(VALUE_NODE_BYTES));
        self.keeping = self.keeping
            && self.listing.items.len() < MAX_KEPT_ITEMS
            && self.kept_bytes.saturating_add(cost) <= MAX_KEPT_BYTES;
        if self.keeping {
            self.listing.items.push(Item(raw.into()));
            self.kept_bytes += cost;
        }
        Ok(())
    }

    /// The listing; `truncated` when pages were left unread.
    pub fn finish(mut self, truncated: bool) -> Listing {
        self.listing.hash = hash_of(&(self.sum, self.listing.total));
        self.listing.truncated = truncated;
        self.listing
    }
}

/// The hash a listing of `items` (values) gets, as if listed on one page.
pub fn hash_values(kind: ListKind, items: &[Value]) -> u64 {
    let text = serde_json::json!({ kind.key(): items }).to_string();
    let mut acc = Accumulator::new(kind, usize::MAX);
    match acc.page(&text) {
        Ok(_) => acc.finish(false).hash,
        Err(_) => 0,
    }
}

/// The estimated memory of `text` parsed into a `serde_json::Value`: its length plus
/// `VALUE_NODE_BYTES` per JSON value in it (a `[0,0,...]` array costs 16 times its text).
pub fn parsed_size(text: &str) -> Result<usize, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let (_, nodes) = Canonical.deserialize(&mut de)?;
    de.end()?;
    Ok(text.len().saturating_add(nodes.saturating_mul(VALUE_NODE_BYTES)))
}

fn hash_of<T: Hash + ?Sized>(t: &T) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    t.hash(&mut h);
    h.finish()
}

/// A page result: the items member streamed item by item, the cursor and result type read,
/// everything else skipped.
struct PageSeed<'a> {
    acc: &'a mut Accumulator,
    end: &'a mut PageEnd,
    /// An item's own failure (the serde error only says that one happened).
    failure: &'a mut Option<McpError>,
}

impl<'de> DeserializeSeed<'de> for PageSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PageSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a result object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == self.acc.kind.key() {
                map.next_value_seed(ItemsSeed { acc: &mut *self.acc, failure: &mut *self.failure })?;
            } else if key == "nextCursor" {
                let raw: &RawValue = map.next_value()?;
                self.end.next_cursor = serde_json::from_str(raw.get()).ok();
            } else if key == "resultType" {
                let raw: &RawValue = map.next_value()?;
                self.end.input_required = serde_json::from_str::<&str>(raw.get()).ok() == Some("input_required");
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

struct ItemsSeed<'a> {
    acc: &'a mut Accumulator,
    failure: &'a mut Option<McpError>,
}

impl<'de> DeserializeSeed<'de> for ItemsSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ItemsSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{} as an array", self.acc.kind.key())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(()) // `null`: no items
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(raw) = seq.next_element::<&RawValue>()? {
            if let Err(e) = self.acc.item(raw.get()) {
                *self.failure = Some(e);
                return Err(serde::de::Error::custom("item refused"));
            }
        }
        Ok(())
    }
}

/// An item's fingerprint (the order-independent hash of its contract members, each hashed
/// canonically) and its count of JSON values.
struct ItemSeed(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for ItemSeed {
    type Value = (u64, usize);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(u64, usize), D::Error> {
        d.deserialize_any(self)
    }
}

macro_rules! scalars_as_canonical {
    () => {
        fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<(u64, usize), E> {
            Canonical.visit_bool(v)
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<(u64, usize), E> {
            Canonical.visit_i64(v)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(u64, usize), E> {
            Canonical.visit_u64(v)
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(u64, usize), E> {
            Canonical.visit_f64(v)
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(u64, usize), E> {
            Canonical.visit_str(v)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<(u64, usize), E> {
            Canonical.visit_unit()
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(u64, usize), A::Error> {
            Canonical.visit_seq(seq)
        }
    };
}

impl<'de> Visitor<'de> for ItemSeed {
    type Value = (u64, usize);

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list item")
    }

    scalars_as_canonical!();

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(u64, usize), A::Error> {
        let (mut sum, mut nodes) = (0u64, 1usize);
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let (h, n) = map.next_value_seed(Canonical)?;
            nodes = nodes.saturating_add(n + 1);
            if self.0.contains(&key.as_ref()) {
                sum = sum.wrapping_add(hash_of(&(key.as_ref(), h)));
            }
        }
        Ok((hash_of(&(7u8, sum)), nodes))
    }
}

/// A canonical hash of any JSON value (object members in any order hash alike; numbers as
/// `serde_json` reads them) and its count of values, in memory proportional to its depth
/// (which `serde_json` limits to 128).
struct Canonical;

impl<'de> DeserializeSeed<'de> for Canonical {
    type Value = (u64, usize);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(u64, usize), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Canonical {
    type Value = (u64, usize);

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<(u64, usize), E> {
        Ok((hash_of(&(0u8, v)), 1))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<(u64, usize), E> {
        Ok((hash_of(&(1u8, v)), 1))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(u64, usize), E> {
        Ok((hash_of(&(2u8, v)), 1))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(u64, usize), E> {
        Ok((hash_of(&(3u8, v.to_bits())), 1))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(u64, usize), E> {
        Ok((hash_of(&(4u8, v)), 1))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(u64, usize), E> {
        Ok((hash_of(&5u8), 1))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(u64, usize), A::Error> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        6u8.hash(&mut h);
        let mut nodes = 1usize;
        while let Some((e, n)) = seq.next_element_seed(Canonical)? {
            e.hash(&mut h);
            nodes = nodes.saturating_add(n);
        }
        Ok((h.finish(), nodes))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(u64, usize), A::Error> {
        let (mut sum, mut nodes) = (0u64, 1usize);
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let (h, n) = map.next_value_seed(Canonical)?;
            nodes = nodes.saturating_add(n + 1);
            sum = sum.wrapping_add(hash_of(&(key.as_ref(), h)));
        }
        Ok((hash_of(&(7u8, sum)), nodes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn page(items: &[Value], next: Option<&str>) -> String {
        let mut r = json!({"tools": items});
        if let Some(n) = next {
            r["nextCursor"] = json!(n);
        }
        r.to_string()
    }

    fn tool(i: usize) -> Value {
        json!({"name": format!("t{i}"), "description": "d", "inputSchema": {"type": "object"}})
    }

    #[test]
    fn items_are_counted_all_and_kept_up_to_the_cap() {
        let mut acc = Accumulator::new(ListKind::Tools, usize::MAX);
        for p in 0..3 {
            let items: Vec<Value> = (p * 600..(p + 1) * 600).map(tool).collect();
            let end = acc.page(&page(&items, Some(&format!("c{p}")))).unwrap();
            assert_eq!(end, PageEnd { next_cursor: Some(format!("c{p}")), input_required: false });
        }
        let l = acc.finish(false);
        assert_eq!((l.total, l.items.len(), l.pages), (1_800, MAX_KEPT_ITEMS, 3));
        assert_eq!(l.items[999].value(), tool(999), "the first items are kept, whole");
        assert!(!l.kept_all() && !l.truncated && l.len() == 1_800);
    }

    #[test]
    fn kept_items_are_bounded_by_their_parsed_size() {
        // One item of 100,000 numbers (6.6 MB once parsed), then a small one: neither kept
        // (the inventory is the first items), both counted.
        let dense = json!({"name": "dense", "inputSchema": {"enum": vec![0; 100_000]}});
        let mut acc = Accumulator::new(ListKind::Tools, usize::MAX);
        acc.page(&page(&[tool(0), dense, tool(1)], None)).unwrap();
        let l = acc.finish(false);
        assert_eq!(l.total, 3);
        assert_eq!(l.values().collect::<Vec<_>>(), vec![tool(0)]);
        let size = parsed_size(&json!(vec![0; 100_000]).to_string()).unwrap();
        assert!(size > 100_000 * VALUE_NODE_BYTES, "{size}");
    }

    #[test]
    fn the_budget_bounds_the_bytes_of_a_listing() {
        let text = page(&(0..100).map(tool).collect::<Vec<_>>(), Some("next"));
        let mut acc = Accumulator::new(ListKind::Tools, text.len() * 3);
        for _ in 0..3 {
            acc.page(&text).unwrap();
        }
        let e = acc.page(&text).unwrap_err();
        assert_eq!(e.error_type(), crate::mcp::ErrorType::BodyTooLarge);
        assert!(e.to_string().contains("tools/list over the") && e.to_string().contains("after 4 pages and 300 items"));
    }

    #[test]
    fn the_hash_ignores_order_and_members_outside_the_contract_but_sees_descriptions() {
        let a = json!({"name": "a", "description": "reads", "inputSchema": {"type": "object", "required": []}});
        let b = json!({"name": "b", "inputSchema": {"type": "object"}, "annotations": {"readOnlyHint": true}});
        let hash = |items: &[Value]| hash_values(ListKind::Tools, items);
        let base = hash(&[a.clone(), b.clone()]);
        assert_eq!(base, hash(&[b.clone(), a.clone()]), "order");
        let reordered = json!({"inputSchema": {"required": [], "type": "object"}, "description": "reads", "name": "a"});
        assert_eq!(base, hash(&[reordered, b.clone()]), "member order");
        let mut meta = a.clone();
        meta["_meta"] = json!({"served-at": 12345});
        assert_eq!(base, hash(&[meta, b.clone()]), "_meta is not the contract");
        let mut described = a.clone();
        described["description"] = json!("deletes");
        assert_ne!(base, hash(&[described, b.clone()]), "a description change is drift");
        let mut annotated = b.clone();
        annotated["annotations"]["readOnlyHint"] = json!(false);
        assert_ne!(base, hash(&[a.clone(), annotated]), "an annotation change is drift");
        assert_ne!(base, hash(&[a.clone(), b.clone(), b.clone()]), "a duplicate is drift");
        assert_ne!(base, hash(std::slice::from_ref(&a)));
        // Pages do not matter, only the items.
        let mut acc = Accumulator::new(ListKind::Tools, usize::MAX);
        acc.page(&page(std::slice::from_ref(&b), Some("2"))).unwrap();
        acc.page(&page(std::slice::from_ref(&a), None)).unwrap();
        assert_eq!(acc.finish(false).hash, base);
    }

    #[test]
    fn odd_pages() {
        let mut acc = Accumulator::new(ListKind::Prompts, usize::MAX);
        let end = acc.page(r#"{"prompts": null, "nextCursor": 7, "resultType": "input_required"}"#).unwrap();
        assert_eq!(end, PageEnd { next_cursor: None, input_required: true });
        assert_eq!(acc.page(r#"{"other": [1, 2]}"#).unwrap(), PageEnd::default());
        for bad in [r#"{"prompts": {"a": 1}}"#, r#"[1]"#, r#"{"prompts": [1, }"#] {
            let e = acc.page(bad).unwrap_err();
            assert_eq!(e.error_type(), crate::mcp::ErrorType::InvalidJson, "{bad}: {e}");
        }
        let deep = format!("{{\"prompts\": [{}{}]}}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(acc.page(&deep).unwrap_err().error_type(), crate::mcp::ErrorType::InvalidJson);
    }
}
