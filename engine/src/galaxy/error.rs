//! The error of content parsing and validation: which file, which line, which entity, what is wrong.

use std::fmt;

/// What kind of problem a [`ContentError`] reports (for programs; people read the message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentErrorKind {
    /// A file is missing, duplicated or in an unexpected place.
    Layout,
    /// A file is not valid TOML/JSON or does not match the expected fields.
    Parse,
    /// Two entities share an id.
    DuplicateId,
    /// Not exactly one nexus region.
    Nexus,
    /// A warp targets no sector, or its own sector, or repeats another warp.
    BadWarp,
    /// A sector cannot be reached from the nexus, or a region has no path to or from it.
    Unreachable,
    /// No sector is a spawn sector.
    NoSpawn,
    /// A name is empty or too long.
    BadName,
    /// A number (sector size, price, quantity, capacity, turn cost) is out of bounds.
    OutOfBounds,
    /// A station lists the same commodity twice.
    DuplicateCommodity,
}

/// A problem in content, naming the file (relative path), the line when the parser knows it, and the entity
/// (e.g. `sector "Vega" (a1b2…)`), with a human-readable message.
///
/// Displays as `file:line: entity: message` (absent parts left out).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ContentError {
    pub kind: ContentErrorKind,
    /// The relative path of the file at fault (e.g. `regions/02-outer-rim.toml`).
    pub file: String,
    /// 1-based line, when the parser reported one.
    pub line: Option<usize>,
    /// The entity at fault (e.g. `sector "Vega" (uuid)`), empty when the problem is the file itself.
    pub entity: String,
    pub message: String,
}

impl ContentError {
    pub(crate) fn new(
        kind: ContentErrorKind,
        file: impl Into<String>,
        entity: impl Into<String>,
        message: impl Into<String>,
    ) -> ContentError {
        ContentError {
            kind,
            file: file.into(),
            line: None,
            entity: entity.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ContentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        f.write_str(": ")?;
        if !self.entity.is_empty() {
            write!(f, "{}: ", self.entity)?;
        }
        f.write_str(&self.message)
    }
}
