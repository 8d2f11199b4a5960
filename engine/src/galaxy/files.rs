//! Content as a set of files (`galaxy.toml` plus `regions/<name>.toml`, or JSON), parsed from strings: no I/O.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::{ContentError, ContentErrorKind as Kind};
use super::{default_sector_size, validate, Galaxy, Region};

/// The folder, relative to the content directory, that holds one file per region.
pub const REGIONS_DIR: &str = "regions";
/// The stem of the galaxy file at the top of the content directory (`galaxy.toml` or `galaxy.json`).
pub const GALAXY_STEM: &str = "galaxy";

/// The syntax of a content file, chosen by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentFormat {
    Toml,
    Json,
}

impl ContentFormat {
    /// `toml` or `json`.
    pub fn extension(self) -> &'static str {
        match self {
            ContentFormat::Toml => "toml",
            ContentFormat::Json => "json",
        }
    }

    /// The format a path's extension names, if any.
    pub fn from_path(path: &str) -> Option<ContentFormat> {
        let (_, ext) = path.rsplit_once('.')?;
        match ext.to_ascii_lowercase().as_str() {
            "toml" => Some(ContentFormat::Toml),
            "json" => Some(ContentFormat::Json),
            _ => None,
        }
    }
}

/// Which file each part of a galaxy came from (or would be written to), for error messages.
#[derive(Debug, Clone)]
pub(crate) struct FileNames {
    pub galaxy: String,
    pub regions: Vec<String>,
}

impl FileNames {
    /// The names [`Galaxy::to_files`] writes.
    pub fn default_for(g: &Galaxy, format: ContentFormat) -> FileNames {
        let ext = format.extension();
        let width = g.regions.len().to_string().len().max(2);
        FileNames {
            galaxy: format!("{GALAXY_STEM}.{ext}"),
            regions: g
                .regions
                .iter()
                .enumerate()
                .map(|(i, r)| format!("{REGIONS_DIR}/{:0width$}-{}.{ext}", i + 1, slug(&r.name)))
                .collect(),
        }
    }

    pub fn region(&self, i: usize) -> String {
        self.regions
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("{REGIONS_DIR}/#{}", i + 1))
    }
}

/// A file-name-friendly form of a name: lowercase ASCII letters and digits joined by single dashes.
pub(crate) fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
        if out.len() >= 40 {
            break;
        }
    }
    let trimmed = out.trim_end_matches('-');
    if trimmed.is_empty() {
        "region".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// The top-level file: everything about the galaxy except its regions.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GalaxyFile {
    name: String,
    #[serde(default)]
    seed: Option<Seed>,
    #[serde(default = "default_sector_size")]
    sector_size: f32,
}

/// A u64 seed that survives TOML (whose integers are i64): written as a string when it does not fit.
#[derive(Debug, Clone, Copy)]
struct Seed(u64);

impl Serialize for Seed {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match i64::try_from(self.0) {
            Ok(v) => s.serialize_i64(v),
            Err(_) => s.serialize_str(&self.0.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for Seed {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Seed, D::Error> {
        struct SeedVisitor;
        impl Visitor<'_> for SeedVisitor {
            type Value = Seed;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative integer seed (or a string holding one)")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Seed, E> {
                Ok(Seed(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Seed, E> {
                u64::try_from(v)
                    .map(Seed)
                    .map_err(|_| E::custom(format!("seed {v} is negative")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Seed, E> {
                v.trim()
                    .parse()
                    .map(Seed)
                    .map_err(|_| E::custom(format!("seed {v:?} is not a non-negative integer")))
            }
        }
        d.deserialize_any(SeedVisitor)
    }
}

fn serialize<T: Serialize>(value: &T, format: ContentFormat) -> String {
    let text = match format {
        ContentFormat::Toml => toml::to_string(value).map_err(|e| e.to_string()),
        ContentFormat::Json => serde_json::to_string_pretty(value)
            .map(|mut s| {
                s.push('\n');
                s
            })
            .map_err(|e| e.to_string()),
    };
    // Our types always serialize; keep a readable trace instead of panicking if that ever changes.
    text.unwrap_or_else(|e| format!("# could not serialize: {e}\n"))
}

fn parse<T: for<'de> Deserialize<'de>>(path: &str, text: &str, format: ContentFormat) -> Result<T, ContentError> {
    match format {
        ContentFormat::Toml => toml::from_str(text).map_err(|e| {
            let mut err = ContentError::new(Kind::Parse, path, "", e.message().trim().to_owned());
            err.line = e.span().map(|span| line_of(text, span.start));
            err
        }),
        ContentFormat::Json => serde_json::from_str(text).map_err(|e| {
            let mut err = ContentError::new(Kind::Parse, path, "", e.to_string());
            err.line = (e.line() > 0).then_some(e.line());
            err
        }),
    }
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

/// `./a/b` and `a\b` become `a/b`.
fn normalize(path: &str) -> String {
    let p = path.replace('\\', "/");
    let mut p = p.as_str();
    while let Some(rest) = p.strip_prefix("./") {
        p = rest;
    }
    p.trim_start_matches('/').to_owned()
}

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A region file in TOML, written by hand so that warps and listings are one inline table per line.
fn region_toml(r: &Region) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "id = \"{}\"\nname = {}\nnexus = {}",
        r.id,
        toml_str(&r.name),
        r.nexus
    );
    for s in &r.sectors {
        let _ = writeln!(out, "\n[[sectors]]\nid = \"{}\"\nname = {}", s.id, toml_str(&s.name));
        if s.spawn {
            let _ = writeln!(out, "spawn = true");
        }
        if s.warps.is_empty() {
            let _ = writeln!(out, "warps = []");
        } else {
            let _ = writeln!(out, "warps = [");
            for w in &s.warps {
                let _ = writeln!(out, "  {{ to = \"{}\", turns = {} }},", w.to, w.turns);
            }
            let _ = writeln!(out, "]");
        }
        for st in &s.stations {
            let _ = writeln!(
                out,
                "\n[[sectors.stations]]\nid = \"{}\"\nname = {}",
                st.id,
                toml_str(&st.name)
            );
            let _ = writeln!(out, "commodities = [");
            for l in &st.commodities {
                let _ = writeln!(
                    out,
                    "  {{ commodity = \"{}\", quantity = {}, capacity = {}, buy_price = {}, sell_price = {} }},",
                    l.commodity, l.quantity, l.capacity, l.buy_price, l.sell_price
                );
            }
            let _ = writeln!(out, "]");
        }
    }
    out
}

impl Galaxy {
    /// Parses and validates content from `(relative path, contents)` pairs; the first problem is returned.
    ///
    /// Expected: `galaxy.toml` or `galaxy.json` at the top, and one file per region in `regions/`
    /// (`regions/<anything>.toml` or `.json`), loaded in path order. Files with other extensions (a README) are
    /// ignored; a `.toml`/`.json` file anywhere else is an error.
    pub fn from_files(files: Vec<(String, String)>) -> Result<Galaxy, ContentError> {
        Galaxy::from_files_all(files).map_err(|errors| {
            errors
                .into_iter()
                .next()
                .unwrap_or_else(|| ContentError::new(Kind::Layout, "", "", "content could not be loaded"))
        })
    }

    /// Like [`Galaxy::from_files`] but reports every problem found (never an empty list on error).
    pub fn from_files_all(files: Vec<(String, String)>) -> Result<Galaxy, Vec<ContentError>> {
        let mut errors = Vec::new();
        let mut galaxy_files = Vec::new();
        let mut region_files = Vec::new();
        for (path, text) in files {
            let path = normalize(&path);
            let Some(format) = ContentFormat::from_path(&path) else {
                continue;
            };
            let stem = &path[..path.len() - format.extension().len() - 1];
            if stem == GALAXY_STEM {
                galaxy_files.push((path, text, format));
            } else if stem
                .strip_prefix(REGIONS_DIR)
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|name| !name.is_empty() && !name.contains('/'))
            {
                region_files.push((path, text, format));
            } else {
                let msg = format!(
                    "unexpected content file: expected {GALAXY_STEM}.toml or {REGIONS_DIR}/<name>.toml (or .json)"
                );
                errors.push(ContentError::new(Kind::Layout, path, "", msg));
            }
        }

        let mut header = None;
        match galaxy_files.as_slice() {
            [] => errors.push(ContentError::new(
                Kind::Layout,
                format!("{GALAXY_STEM}.toml"),
                "",
                format!("missing: the content directory needs {GALAXY_STEM}.toml (or {GALAXY_STEM}.json)"),
            )),
            [(path, text, format), rest @ ..] => {
                for (other, _, _) in rest {
                    let msg = format!("a second galaxy file (already have {path}); keep one");
                    errors.push(ContentError::new(Kind::Layout, other.clone(), "", msg));
                }
                match parse::<GalaxyFile>(path, text, *format) {
                    Ok(g) => header = Some((path.clone(), g)),
                    Err(e) => errors.push(e),
                }
            }
        }

        region_files.sort_by(|a, b| a.0.cmp(&b.0));
        if region_files.is_empty() {
            errors.push(ContentError::new(
                Kind::Layout,
                format!("{REGIONS_DIR}/"),
                "",
                format!("no region files: add one {REGIONS_DIR}/<name>.toml per region"),
            ));
        }
        let mut regions = Vec::new();
        let mut region_paths = Vec::new();
        for (i, (path, text, format)) in region_files.iter().enumerate() {
            if i > 0 && region_files[i - 1].0 == *path {
                let msg = "the same file was given twice".to_owned();
                errors.push(ContentError::new(Kind::Layout, path.clone(), "", msg));
                continue;
            }
            match parse::<Region>(path, text, *format) {
                Ok(r) => {
                    regions.push(r);
                    region_paths.push(path.clone());
                }
                Err(e) => errors.push(e),
            }
        }

        let Some((galaxy_path, header)) = header else {
            return Err(errors);
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        let galaxy = Galaxy {
            name: header.name,
            seed: header.seed.map(|s| s.0),
            sector_size: header.sector_size,
            regions,
        };
        let names = FileNames {
            galaxy: galaxy_path,
            regions: region_paths,
        };
        let problems = validate::check(&galaxy, &names);
        if problems.is_empty() {
            Ok(galaxy)
        } else {
            Err(problems)
        }
    }

    /// The content as `(relative path, contents)` pairs: `galaxy.<ext>` and `regions/NN-<slug>.<ext>`, numbered
    /// so that reading them back in path order gives the same galaxy.
    pub fn to_files(&self, format: ContentFormat) -> Vec<(String, String)> {
        let names = FileNames::default_for(self, format);
        let header = GalaxyFile {
            name: self.name.clone(),
            seed: self.seed.map(Seed),
            sector_size: self.sector_size,
        };
        let mut out = vec![(names.galaxy.clone(), serialize(&header, format))];
        for (r, path) in self.regions.iter().zip(names.regions) {
            let text = match format {
                ContentFormat::Toml => region_toml(r),
                ContentFormat::Json => serialize(r, format),
            };
            out.push((path, text));
        }
        out
    }
}
