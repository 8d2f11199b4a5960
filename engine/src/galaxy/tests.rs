//! Tests of content parsing, validation and generation (the `docs/content.md` example is the main fixture).

use super::*;

const DOC: &str = include_str!("../../../docs/content.md");
const NEXUS_FILE: &str = "regions/01-nexus.toml";
const RIM_FILE: &str = "regions/02-outer-rim.toml";

/// The complete example of `docs/content.md`: every `#### \`path\`` heading followed by a fenced block.
fn doc_example() -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut lines = DOC.lines();
    while let Some(line) = lines.next() {
        let Some(path) = line.strip_prefix("#### `").and_then(|l| l.strip_suffix('`')) else {
            continue;
        };
        let mut body = String::new();
        let mut inside = false;
        for l in lines.by_ref() {
            if l.starts_with("```") {
                if inside {
                    break;
                }
                inside = true;
            } else if inside {
                body.push_str(l);
                body.push('\n');
            }
        }
        files.push((path.to_owned(), body));
    }
    files
}

/// The doc example with `from` replaced by `to` in file `path` (the replacement must happen).
fn edited(path: &str, from: &str, to: &str) -> Vec<(String, String)> {
    let mut files = doc_example();
    let (_, text) = files.iter_mut().find(|(p, _)| p == path).unwrap();
    assert!(text.contains(from), "{from:?} not in {path}");
    *text = text.replacen(from, to, 1);
    files
}

fn error_of(files: Vec<(String, String)>) -> ContentError {
    Galaxy::from_files(files).expect_err("content should be refused")
}

fn id(n: u8, kind: char) -> String {
    format!("{kind}0000000-0000-4000-8000-0000000000{n:02}")
}

#[test]
fn doc_example_parses_and_validates() {
    let files = doc_example();
    assert_eq!(files.len(), 3);
    let g = Galaxy::from_files(files).unwrap();
    assert_eq!(g.name, "Tutorial Cluster");
    assert_eq!(g.seed, None);
    assert_eq!(g.sector_size, 1000.0);
    assert_eq!(g.regions.len(), 2);
    assert_eq!(g.sector_count(), 5);
    assert_eq!(g.nexus().unwrap().name, "Nexus");
    assert_eq!(g.spawn_sector().unwrap().name, "Haven");
    let (region, vega) = g.sector(id(4, 'b').parse().unwrap()).unwrap();
    assert_eq!((region.name.as_str(), vega.name.as_str()), ("Outer Rim", "Vega"));
    assert_eq!(
        vega.warps[1],
        Warp {
            to: id(5, 'b').parse().unwrap(),
            turns: 3
        }
    );
    let depot = &vega.stations[0];
    assert_eq!(
        depot.commodities[0],
        Listing {
            commodity: Commodity::Organics,
            quantity: 50,
            capacity: 2000,
            buy_price: 25,
            sell_price: 32
        }
    );
    let layout = g.layout();
    assert_eq!(
        layout[1].sectors.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["Rim Gate", "Vega", "Dust"]
    );
}

#[test]
fn generation_is_deterministic() {
    let a = generate(GenerateParams::demo());
    let b = generate(GenerateParams::demo());
    assert_eq!(a, b);
    assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
    assert_eq!(a.to_files(ContentFormat::Toml), b.to_files(ContentFormat::Toml));
    let c = generate(GenerateParams {
        seed: 2103,
        ..GenerateParams::demo()
    });
    assert_ne!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&c).unwrap());
    assert_ne!(a.regions[0].id, c.regions[0].id);
}

#[test]
fn demo_galaxy_validates_and_has_the_documented_shape() {
    let g = generate(GenerateParams::demo());
    assert_eq!(g.validate_all(), vec![]);
    assert_eq!(g.seed, Some(2102));
    assert_eq!(g.regions.len(), 4);
    let nexus = &g.regions[0];
    assert!(nexus.nexus && nexus.name == "Nexus");
    assert_eq!(nexus.sectors.len(), 5);
    assert!(nexus.sectors[0].spawn && !nexus.sectors[0].stations.is_empty());
    assert_eq!(g.sectors().filter(|(_, s)| s.spawn).count(), 1);
    let nexus_ids: Vec<Uuid> = nexus.sectors.iter().map(|s| s.id).collect();
    for r in &g.regions[1..] {
        assert!(!r.nexus);
        assert_eq!(r.sectors.len(), 50);
        let gates: Vec<&Warp> = r.sectors[0]
            .warps
            .iter()
            .filter(|w| nexus_ids.contains(&w.to))
            .collect();
        assert_eq!(gates.len(), 1, "one gate per region");
        assert_eq!(gates[0].turns, 5);
        for s in &r.sectors {
            assert!(s.warps.len() >= 2, "ring links in both directions");
            for w in s.warps.iter().filter(|w| !nexus_ids.contains(&w.to)) {
                assert!((1..=3).contains(&w.turns));
            }
            assert!(s.name.len() <= 64 && !s.name.is_empty());
        }
    }
    let stations: Vec<&Station> = g.sectors().flat_map(|(_, s)| &s.stations).collect();
    let sectors = g.sector_count();
    assert!(
        stations.len() * 5 >= sectors && stations.len() * 2 <= sectors,
        "about a third: {}",
        stations.len()
    );
    for st in stations {
        assert!((3..=5).contains(&st.commodities.len()));
        for l in &st.commodities {
            assert!(l.quantity <= l.capacity && l.buy_price >= 1 && l.sell_price > l.buy_price);
        }
    }
}

#[test]
fn generated_galaxies_validate_for_many_seeds_and_sizes() {
    for seed in 0..8 {
        for (regions, per_region) in [(0, 1), (1, 0), (1, 2), (2, 3), (3, 4), (5, 20), (2, 120)] {
            let params = GenerateParams {
                seed,
                regions,
                sectors_per_region: per_region,
            };
            let g = generate(params);
            assert_eq!(g.validate_all(), vec![], "{params:?}");
            assert_eq!(g.regions.len() as u32, regions + 1);
            assert_eq!(g.regions[0].sectors.len() as u32, (per_region.max(1) / 10).max(3));
        }
    }
}

#[test]
fn files_round_trip_in_toml_and_json() {
    let g = generate(GenerateParams {
        seed: 7,
        regions: 2,
        sectors_per_region: 12,
    });
    for format in [ContentFormat::Toml, ContentFormat::Json] {
        let files = g.to_files(format);
        assert_eq!(files.len(), 4);
        assert_eq!(files[0].0, format!("galaxy.{}", format.extension()));
        assert!(files[1].0.starts_with("regions/01-nexus."), "{}", files[1].0);
        let back = Galaxy::from_files(files).unwrap();
        assert_eq!(back, g, "{format:?}");
    }
    // Mixed formats, shuffled order, a README and `./` prefixes are fine.
    let mut files = g.to_files(ContentFormat::Json);
    files[2] = g.to_files(ContentFormat::Toml).swap_remove(2);
    files.reverse();
    files.push(("README.md".into(), "# notes".into()));
    files[0].0 = format!("./{}", files[0].0);
    assert_eq!(Galaxy::from_files(files).unwrap(), g);
}

#[test]
fn doc_example_round_trips_and_odd_names_survive_toml() {
    let mut g = Galaxy::from_files(doc_example()).unwrap();
    assert_eq!(Galaxy::from_files(g.to_files(ContentFormat::Toml)).unwrap(), g);
    g.regions[1].sectors[2].name = "Dust \"Old\" \\ Ω\ttab".into();
    g.seed = Some(u64::MAX);
    for format in [ContentFormat::Toml, ContentFormat::Json] {
        assert_eq!(Galaxy::from_files(g.to_files(format)).unwrap(), g, "{format:?}");
    }
}

#[test]
fn dangling_warp_names_file_sector_and_target() {
    let e = error_of(edited(
        RIM_FILE,
        &format!("{{ to = \"{}\", turns = 1 }}", id(3, 'b')),
        &format!("{{ to = \"{}\", turns = 1 }}", id(9, 'b')),
    ));
    assert_eq!(e.kind, ContentErrorKind::BadWarp);
    assert_eq!(e.file, RIM_FILE);
    assert_eq!(e.entity, format!("sector \"Dust\" ({})", id(5, 'b')));
    assert_eq!(
        e.to_string(),
        format!(
            "{RIM_FILE}: sector \"Dust\" ({}): warp to {} points at no sector",
            id(5, 'b'),
            id(9, 'b')
        )
    );
}

#[test]
fn duplicate_id_names_both_entities_and_files() {
    let e = error_of(edited(RIM_FILE, &id(2, 'c'), &id(1, 'c')));
    assert_eq!(e.kind, ContentErrorKind::DuplicateId);
    assert_eq!(e.file, RIM_FILE);
    assert_eq!(e.entity, format!("station \"Vega Depot\" ({})", id(1, 'c')));
    assert!(e.message.contains("station \"Haven Exchange\""), "{e}");
    assert!(e.message.contains(NEXUS_FILE), "{e}");
}

#[test]
fn unreachable_sector_is_named() {
    let e = error_of(edited(
        RIM_FILE,
        &format!("  {{ to = \"{}\", turns = 3 }},", id(5, 'b')),
        "",
    ));
    assert_eq!(e.kind, ContentErrorKind::Unreachable);
    assert_eq!(e.file, RIM_FILE);
    assert_eq!(e.entity, format!("sector \"Dust\" ({})", id(5, 'b')));
    assert!(e.message.contains("cannot be reached from the nexus"), "{e}");
}

#[test]
fn region_without_a_way_back_to_the_nexus_is_named() {
    let e = error_of(edited(
        RIM_FILE,
        &format!("  {{ to = \"{}\", turns = 5 }},", id(2, 'b')),
        "",
    ));
    assert_eq!(e.kind, ContentErrorKind::Unreachable);
    assert_eq!(e.file, RIM_FILE);
    assert_eq!(e.entity, format!("region \"Outer Rim\" ({})", id(2, 'a')));
    assert!(e.message.contains("back to the nexus"), "{e}");
    // And a region no warp leads into.
    let e = error_of(edited(
        NEXUS_FILE,
        &format!("  {{ to = \"{}\", turns = 5 }},", id(3, 'b')),
        "",
    ));
    assert_eq!((e.file.as_str(), e.kind), (RIM_FILE, ContentErrorKind::Unreachable));
    assert!(e.message.contains("into this region"), "{e}");
}

#[test]
fn bad_prices_and_quantities_name_the_listing() {
    let listing = |c: &str| format!("station \"Vega Depot\" ({}) listing {c}", id(2, 'c'));
    let cases = [
        (
            "buy_price = 25, sell_price = 32",
            "buy_price = 25, sell_price = 20",
            "sell_price 20 is below buy_price 25",
        ),
        (
            "buy_price = 25, sell_price = 32",
            "buy_price = 0, sell_price = 32",
            "buy_price 0 is out of bounds",
        ),
        (
            "buy_price = 25, sell_price = 32",
            "buy_price = 25, sell_price = 1000001",
            "sell_price 1000001 is out of bounds",
        ),
        (
            "quantity = 50, capacity = 2000",
            "quantity = 2001, capacity = 2000",
            "quantity 2001 exceeds capacity 2000",
        ),
        (
            "quantity = 50, capacity = 2000",
            "quantity = 50, capacity = 2000000",
            "capacity 2000000 is out of bounds",
        ),
    ];
    for (from, to, message) in cases {
        let e = error_of(edited(RIM_FILE, from, to));
        assert_eq!(e.kind, ContentErrorKind::OutOfBounds, "{e}");
        assert_eq!(e.file, RIM_FILE);
        assert_eq!(e.entity, listing("organics"));
        assert!(e.message.starts_with(message), "{e}");
    }
    let e = error_of(edited(
        RIM_FILE,
        "commodity = \"ore\", quantity = 1900",
        "commodity = \"organics\", quantity = 1900",
    ));
    assert_eq!(e.kind, ContentErrorKind::DuplicateCommodity);
    assert_eq!(e.entity, format!("station \"Vega Depot\" ({})", id(2, 'c')));
    assert_eq!(e.message, "organics is listed twice");
}

#[test]
fn structural_rules_each_name_file_and_entity() {
    let rim_entity = format!("region \"Outer Rim\" ({})", id(2, 'a'));
    let haven = format!("sector \"Haven\" ({})", id(1, 'b'));
    // (file, from, to, expected kind, expected file, expected entity, message fragment)
    let cases: Vec<(&str, String, String, ContentErrorKind, &str, String, &str)> = vec![
        (
            NEXUS_FILE,
            "nexus = true".into(),
            "nexus = false".into(),
            ContentErrorKind::Nexus,
            "galaxy.toml",
            "galaxy \"Tutorial Cluster\"".into(),
            "no region is marked",
        ),
        (
            RIM_FILE,
            "name = \"Outer Rim\"".into(),
            "name = \"Outer Rim\"\nnexus = true".into(),
            ContentErrorKind::Nexus,
            RIM_FILE,
            rim_entity.clone(),
            "a second nexus region",
        ),
        (
            NEXUS_FILE,
            "spawn = true".into(),
            "spawn = false".into(),
            ContentErrorKind::NoSpawn,
            "galaxy.toml",
            "galaxy \"Tutorial Cluster\"".into(),
            "no sector has `spawn = true`",
        ),
        (
            NEXUS_FILE,
            "name = \"Nexus\"".into(),
            "name = \"  \"".into(),
            ContentErrorKind::BadName,
            NEXUS_FILE,
            format!("region \"  \" ({})", id(1, 'a')),
            "name is empty",
        ),
        (
            NEXUS_FILE,
            "name = \"Haven\"".into(),
            format!("name = \"{}\"", "H".repeat(65)),
            ContentErrorKind::BadName,
            NEXUS_FILE,
            format!("sector \"{}\" ({})", "H".repeat(65), id(1, 'b')),
            "name is 65 bytes long",
        ),
        (
            NEXUS_FILE,
            format!("{{ to = \"{}\", turns = 1 }}", id(2, 'b')),
            format!("{{ to = \"{}\", turns = 1 }}", id(1, 'b')),
            ContentErrorKind::BadWarp,
            NEXUS_FILE,
            haven.clone(),
            "points at its own sector",
        ),
        (
            NEXUS_FILE,
            format!("{{ to = \"{}\", turns = 1 }}", id(2, 'b')),
            format!(
                "{{ to = \"{}\", turns = 1 }}, {{ to = \"{}\", turns = 2 }}",
                id(2, 'b'),
                id(2, 'b')
            ),
            ContentErrorKind::BadWarp,
            NEXUS_FILE,
            haven.clone(),
            "two warps to",
        ),
        (
            NEXUS_FILE,
            format!("{{ to = \"{}\", turns = 1 }}", id(2, 'b')),
            format!("{{ to = \"{}\", turns = 1001 }}", id(2, 'b')),
            ContentErrorKind::OutOfBounds,
            NEXUS_FILE,
            haven,
            "costs 1001 turns",
        ),
        (
            "galaxy.toml",
            "sector_size = 1000.0".into(),
            "sector_size = 5".into(),
            ContentErrorKind::OutOfBounds,
            "galaxy.toml",
            "galaxy \"Tutorial Cluster\"".into(),
            "sector_size 5 is out of bounds",
        ),
        (
            "galaxy.toml",
            "sector_size = 1000.0".into(),
            "sector_size = nan".into(),
            ContentErrorKind::OutOfBounds,
            "galaxy.toml",
            "galaxy \"Tutorial Cluster\"".into(),
            "sector_size NaN is out of bounds",
        ),
    ];
    for (file, from, to, kind, want_file, want_entity, fragment) in cases {
        let e = error_of(edited(file, &from, &to));
        assert_eq!(
            (e.kind, e.file.as_str(), e.entity.as_str()),
            (kind, want_file, want_entity.as_str()),
            "{e}"
        );
        assert!(e.message.contains(fragment), "{e}");
    }
}

#[test]
fn parse_errors_name_file_and_line() {
    let e = error_of(edited(RIM_FILE, "name = \"Vega\"", "name = \"Vega\"\ncolour = \"red\""));
    assert_eq!(
        (e.kind, e.file.as_str(), e.line),
        (ContentErrorKind::Parse, RIM_FILE, Some(15))
    );
    assert!(e.message.contains("unknown field `colour`"), "{e}");
    assert!(e.to_string().starts_with("regions/02-outer-rim.toml:15: "), "{e}");

    let e = error_of(edited(RIM_FILE, "commodity = \"organics\"", "commodity = \"gold\""));
    assert_eq!((e.kind, e.file.as_str()), (ContentErrorKind::Parse, RIM_FILE));
    assert!(e.message.contains("gold"), "{e}");

    let e = error_of(edited("galaxy.toml", "name = ", "name "));
    assert_eq!((e.file.as_str(), e.line), ("galaxy.toml", Some(1)));

    let mut files = doc_example();
    files[2] = (
        "regions/02-outer-rim.json".into(),
        "{\n  \"id\": \"a0000000-0000-4000-8000-000000000002\",\n  \"name\": 3\n}".into(),
    );
    let e = error_of(files);
    assert_eq!(
        (e.kind, e.file.as_str(), e.line),
        (ContentErrorKind::Parse, "regions/02-outer-rim.json", Some(3))
    );
}

#[test]
fn file_layout_problems_are_reported() {
    let without_galaxy: Vec<_> = doc_example().into_iter().filter(|(p, _)| p != "galaxy.toml").collect();
    let e = error_of(without_galaxy);
    assert_eq!((e.kind, e.file.as_str()), (ContentErrorKind::Layout, "galaxy.toml"));
    assert!(e.message.contains("missing"), "{e}");

    let mut files = doc_example();
    files.push(("galaxy.json".into(), "{\"name\": \"Other\"}".into()));
    let e = error_of(files);
    assert_eq!((e.kind, e.file.as_str()), (ContentErrorKind::Layout, "galaxy.json"));

    let mut files = doc_example();
    files.push(("extra/thing.toml".into(), String::new()));
    let e = error_of(files);
    assert_eq!(
        (e.kind, e.file.as_str()),
        (ContentErrorKind::Layout, "extra/thing.toml")
    );
    assert!(e.message.contains("unexpected content file"), "{e}");

    let only_galaxy: Vec<_> = doc_example().into_iter().take(1).collect();
    let errors = Galaxy::from_files_all(only_galaxy).unwrap_err();
    assert_eq!(errors[0].kind, ContentErrorKind::Layout);
    assert!(errors[0].message.contains("no region files"), "{}", errors[0]);
}

#[test]
fn all_problems_are_collected_in_a_stable_order() {
    let mut files = edited(RIM_FILE, &id(2, 'c'), &id(1, 'c'));
    let (_, nexus) = files.iter_mut().find(|(p, _)| p == NEXUS_FILE).unwrap();
    *nexus = nexus.replacen("spawn = true", "spawn = false", 1);
    let errors = Galaxy::from_files_all(files).unwrap_err();
    let kinds: Vec<_> = errors.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [ContentErrorKind::DuplicateId, ContentErrorKind::NoSpawn]);
}

#[test]
fn validate_in_memory_names_the_files_to_files_would_write() {
    let mut g = Galaxy::from_files(doc_example()).unwrap();
    g.regions[1].sectors[1].stations[0].commodities[0].sell_price = 1;
    let e = g.validate().unwrap_err();
    assert_eq!(e.file, RIM_FILE);
    assert_eq!(
        e.entity,
        format!("station \"Vega Depot\" ({}) listing organics", id(2, 'c'))
    );
    g.regions.clear();
    assert_eq!(g.validate().unwrap_err().kind, ContentErrorKind::Nexus);
}

#[test]
fn galaxy_round_trips_through_json_and_postcard() {
    let g = generate(GenerateParams {
        seed: 3,
        regions: 1,
        sectors_per_region: 8,
    });
    let json = serde_json::to_string(&g).unwrap();
    assert_eq!(serde_json::from_str::<Galaxy>(&json).unwrap(), g);
    let bytes = postcard::to_allocvec(&g).unwrap();
    assert_eq!(postcard::from_bytes::<Galaxy>(&bytes).unwrap(), g);
    assert_eq!(
        serde_json::to_string(&Commodity::LuxuryGoods).unwrap(),
        "\"luxury_goods\""
    );
}
