//! The rule for text players show each other (character names, chat): printable text only.
//!
//! Refused, anywhere in the text: control characters (Unicode category Cc: U+0000-U+001F, which includes the
//! escape character that starts ANSI/VT sequences, U+007F and U+0080-U+009F, which include the C1 CSI), the line
//! and paragraph separators U+2028 and U+2029, and the bidirectional controls U+061C, U+200E, U+200F,
//! U+202A-U+202E and U+2066-U+2069 (which let a name or a line display as something else, such as another
//! player's name). Everything else is allowed, including emoji sequences joined with U+200D.

/// Why a text was refused: the first character that is not allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{what} U+{code:04X} at character {at} is not allowed")]
pub struct TextError {
    /// The refused character.
    pub ch: char,
    /// Its Unicode scalar value.
    pub code: u32,
    /// Its position, counted in characters from 0.
    pub at: usize,
    /// What kind of character it is.
    pub what: &'static str,
}

/// What kind of refused character `c` is, or `None` if it is allowed.
pub fn refused(c: char) -> Option<&'static str> {
    match c {
        '\u{1b}' => Some("escape character"),
        c if c.is_control() => Some("control character"),
        '\u{2028}' | '\u{2029}' => Some("line separator"),
        '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {
            Some("bidirectional control")
        }
        _ => None,
    }
}

/// Checks `text` against the rule; the error names the first refused character.
pub fn check(text: &str) -> Result<(), TextError> {
    for (at, ch) in text.chars().enumerate() {
        if let Some(what) = refused(ch) {
            return Err(TextError {
                ch,
                code: ch as u32,
                at,
                what,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_text_passes_and_emoji_sequences_too() {
        for ok in ["Ship 7", "Ørsted — ☄", "日本語", "👩\u{200d}🚀 pilot", "a\u{301}"] {
            assert_eq!(check(ok), Ok(()), "{ok:?}");
        }
    }

    #[test]
    fn controls_escapes_and_bidi_overrides_are_named() {
        let e = check("abc\u{202e}fed").unwrap_err();
        assert_eq!((e.code, e.at, e.what), (0x202e, 3, "bidirectional control"));
        assert_eq!(
            e.to_string(),
            "bidirectional control U+202E at character 3 is not allowed"
        );
        assert_eq!(check("\u{1b}[31mred").unwrap_err().what, "escape character");
        assert_eq!(check("line\nbreak").unwrap_err().what, "control character");
        assert_eq!(check("nul\0").unwrap_err().code, 0);
        assert_eq!(check("c1\u{9b}2J").unwrap_err().what, "control character");
        assert_eq!(check("del\u{7f}").unwrap_err().code, 0x7f);
        assert_eq!(check("x\u{2066}y").unwrap_err().what, "bidirectional control");
        assert_eq!(check("x\u{200f}").unwrap_err().what, "bidirectional control");
        assert_eq!(check("a\u{2028}b").unwrap_err().what, "line separator");
    }
}
