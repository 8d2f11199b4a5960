//! Pronounceable names for generated content, built from syllables drawn from the generator's rng.

use std::collections::HashSet;

use rand::Rng;

const ONSETS: &[&str] = &[
    "b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "kr", "th", "st", "vr",
    "qu", "sh", "x",
];
const VOWELS: &[&str] = &["a", "e", "i", "o", "u", "ae", "ai", "ea", "io", "y"];
const CODAS: &[&str] = &["", "", "", "n", "r", "s", "l", "th", "x", "m"];
const REGION_SUFFIXES: &[&str] = &[
    "Reach", "Expanse", "Drift", "Cluster", "Verge", "Belt", "March", "Deep", "Rim", "Frontier",
];
const STATION_SUFFIXES: &[&str] = &["Exchange", "Depot", "Outpost", "Station", "Market", "Port", "Hub"];
/// Designations after some sector names ("Toris IV").
const NUMERALS: &[&str] = &["II", "III", "IV", "V", "VI", "VII", "Prime", "Major", "Minor"];
const GREEK: &[&str] = &[
    "Alpha", "Beta", "Gamma", "Delta", "Epsilon", "Zeta", "Eta", "Theta", "Iota", "Kappa", "Lambda", "Mu", "Nu", "Xi",
    "Omicron", "Pi", "Rho", "Sigma", "Tau", "Upsilon", "Phi", "Chi", "Psi", "Omega",
];

fn pick<'a, R: Rng>(rng: &mut R, list: &[&'a str]) -> &'a str {
    // Lists are short constants; u32 sampling keeps the stream portable across platforms.
    let len = u32::try_from(list.len()).unwrap_or(u32::MAX);
    list[rng.random_range(0..len) as usize]
}

/// A capitalised word of `syllables` syllables.
fn word<R: Rng>(rng: &mut R, syllables: u32) -> String {
    let mut w = String::new();
    for i in 0..syllables {
        // The first syllable may start with a vowel; later ones always have an onset.
        if i > 0 || rng.random_ratio(3, 4) {
            w.push_str(pick(rng, ONSETS));
        }
        w.push_str(pick(rng, VOWELS));
        if i + 1 == syllables || rng.random_ratio(1, 4) {
            w.push_str(pick(rng, CODAS));
        }
    }
    let mut chars = w.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => w,
    }
}

/// Hands out names, never the same one twice.
#[derive(Default)]
pub(crate) struct Namer {
    used: HashSet<String>,
}

impl Namer {
    /// Takes `candidate`, or `candidate 2`, `candidate 3`… if it is taken.
    fn unique(&mut self, candidate: String) -> String {
        if self.used.insert(candidate.clone()) {
            return candidate;
        }
        let mut n = 2u32;
        loop {
            let c = format!("{candidate} {n}");
            if self.used.insert(c.clone()) {
                return c;
            }
            n += 1;
        }
    }

    /// "The Toris Galaxy".
    pub fn galaxy<R: Rng>(&mut self, rng: &mut R) -> String {
        let c = format!("The {} Galaxy", word(rng, 2));
        self.unique(c)
    }

    /// "Kavelor Reach".
    pub fn region<R: Rng>(&mut self, rng: &mut R) -> String {
        let syllables = rng.random_range(2..=3);
        let c = format!("{} {}", word(rng, syllables), pick(rng, REGION_SUFFIXES));
        self.unique(c)
    }

    /// "Toris", "Vael IV".
    pub fn sector<R: Rng>(&mut self, rng: &mut R) -> String {
        let syllables = rng.random_range(1..=3);
        let mut c = word(rng, syllables);
        if rng.random_ratio(1, 4) {
            c = format!("{c} {}", pick(rng, NUMERALS));
        }
        self.unique(c)
    }

    /// "<region first word> Gate".
    pub fn gate(&mut self, region: &str) -> String {
        let first = region.split(' ').next().unwrap_or(region);
        self.unique(format!("{first} Gate"))
    }

    /// "Nexus Prime", then "Nexus Alpha", "Nexus Beta"…
    pub fn nexus(&mut self, index: usize) -> String {
        let c = match index {
            0 => "Nexus Prime".to_owned(),
            i => match GREEK.get(i - 1) {
                Some(g) => format!("Nexus {g}"),
                None => format!("Nexus {}", i + 1),
            },
        };
        self.unique(c)
    }

    /// "<sector> Exchange".
    pub fn station<R: Rng>(&mut self, rng: &mut R, sector: &str) -> String {
        let c = format!("{sector} {}", pick(rng, STATION_SUFFIXES));
        self.unique(c)
    }
}
