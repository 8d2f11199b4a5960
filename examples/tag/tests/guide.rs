//! docs/extending.md walks through this crate: each snippet it marks `<!-- source: FILE -->` must be, without its
//! hidden (`# `) lines, word for word in that file, so the guide cannot drift from the example. (The snippets
//! themselves are compiled and run as this crate's doctests.)

#[test]
fn the_guide_shows_the_examples_real_source() {
    let root = env!("CARGO_MANIFEST_DIR");
    let guide = std::fs::read_to_string(format!("{root}/../../docs/extending.md")).expect("the guide");
    let mut checked = 0;
    let mut lines = guide.lines();
    while let Some(line) = lines.next() {
        let Some(file) = line.strip_prefix("<!-- source: ").and_then(|l| l.strip_suffix(" -->")) else {
            continue;
        };
        let fence = lines.next().unwrap_or_default();
        assert!(
            fence.starts_with("```rust"),
            "a code block follows the marker for {file}"
        );
        let shown: Vec<&str> = lines
            .by_ref()
            .take_while(|l| *l != "```")
            .filter(|l| *l != "#" && !l.starts_with("# "))
            .collect();
        let source = std::fs::read_to_string(format!("{root}/{file}")).expect("the marked file exists");
        assert!(
            source.contains(&shown.join("\n")),
            "the guide's snippet from {file} is not in the file:\n{}",
            shown.join("\n")
        );
        checked += 1;
    }
    assert_eq!(
        checked, 4,
        "the guide marks the wire types, the game value, the rules and main"
    );
}
