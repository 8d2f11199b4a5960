//! docs/extending.md walks through this crate: each snippet it (or the README) marks `<!-- source: FILE -->` must be,
//! without its hidden (`# `) lines, word for word in that file (FILE from the repository's root), so the guide
//! cannot drift from the example. (The guide's snippets themselves are compiled and run as this crate's doctests.)

/// How many marked snippets `doc` has; panics on one that is not word for word in its file.
fn check(doc: &str) -> usize {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let text = std::fs::read_to_string(format!("{root}/{doc}")).expect("the document");
    let mut checked = 0;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(file) = line.strip_prefix("<!-- source: ").and_then(|l| l.strip_suffix(" -->")) else {
            continue;
        };
        let fence = lines.next().unwrap_or_default();
        assert!(
            fence.starts_with("```rust"),
            "{doc}: a code block follows the marker for {file}"
        );
        let shown: Vec<&str> = lines
            .by_ref()
            .take_while(|l| *l != "```")
            .filter(|l| *l != "#" && !l.starts_with("# "))
            .collect();
        let source = std::fs::read_to_string(format!("{root}/{file}")).expect("the marked file exists");
        assert!(
            source.contains(&shown.join("\n")),
            "{doc}: the snippet from {file} is not in the file:\n{}",
            shown.join("\n")
        );
        checked += 1;
    }
    checked
}

#[test]
fn the_guide_shows_the_examples_real_source() {
    assert_eq!(
        check("docs/extending.md"),
        4,
        "the guide marks the wire types, the game value, the rules and main"
    );
    assert_eq!(check("README.md"), 1, "the README marks the example's main");
}
