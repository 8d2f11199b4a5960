//! Compact per-tick motion: ship positions and velocities keyed by per-sector handles.
//!
//! In JSON (human-readable formats) [`Moves`] and [`Steers`] are plain arrays of `{"h", "x", "y"}` and
//! `{"h", "vx", "vy"}` objects. In binary (postcard) each is a bitmap of the handles present (bit `h % 8` of byte
//! `h / 8`) followed by the values in handle order: positions quantized to 16 bits per axis over the sector
//! (`x = q * size / 65535`, 4 bytes a ship, preceded by the sector size as an f32), velocities as two exact
//! little-endian f32 (8 bytes a ship). A delta of 100 moving ships of which half changed course is then about
//! 900 bytes.

use serde::de::{self, Deserializer};
use serde::ser::{SerializeTuple, Serializer};
use serde::{Deserialize, Serialize};

/// A ship's new position.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Move {
    pub h: u32,
    pub x: f32,
    pub y: f32,
}

/// A ship's new velocity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Steer {
    pub h: u32,
    pub vx: f32,
    pub vy: f32,
}

/// Positions of the ships that moved this tick. `size` is the sector's edge length, used to quantize in binary
/// (JSON does not carry it: equality compares the items only).
#[derive(Debug, Clone, Default)]
pub struct Moves {
    pub size: f32,
    pub items: Vec<Move>,
}

impl PartialEq for Moves {
    fn eq(&self, other: &Self) -> bool {
        self.items == other.items
    }
}

/// Velocities of the ships that changed course this tick.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Steers {
    pub items: Vec<Steer>,
}

/// Largest handle a binary bitmap may name (a bitmap of 1 MiB); larger ones are refused when decoding.
const MAX_HANDLE: usize = 8 * 1024 * 1024;

fn quantize(v: f32, size: f32) -> u16 {
    if size.is_nan() || size <= 0.0 || !v.is_finite() {
        return 0;
    }
    ((v / size).clamp(0.0, 1.0) * 65535.0).round() as u16
}

fn dequantize(q: u16, size: f32) -> f32 {
    f32::from(q) * size / 65535.0
}

/// Bytes serialized as a postcard/serde byte string (length, then raw bytes).
struct Raw<'a>(&'a [u8]);

impl Serialize for Raw<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// Builds the handle bitmap and the value bytes of items sorted by handle.
fn pack<T: Copy>(items: &[T], handle: impl Fn(&T) -> u32, mut put: impl FnMut(&T, &mut Vec<u8>)) -> (Vec<u8>, Vec<u8>) {
    let mut sorted: Vec<T> = items.to_vec();
    sorted.sort_by_key(&handle);
    let bits_len = sorted.last().map_or(0, |t| handle(t) as usize / 8 + 1);
    let mut bits = vec![0u8; bits_len];
    let mut values = Vec::with_capacity(sorted.len() * 8);
    let mut last = None;
    for t in &sorted {
        let h = handle(t) as usize;
        if last == Some(h) {
            continue;
        }
        last = Some(h);
        bits[h / 8] |= 1 << (h % 8);
        put(t, &mut values);
    }
    (bits, values)
}

/// The handles a bitmap names, in order.
fn handles(bits: &[u8]) -> impl Iterator<Item = u32> + '_ {
    bits.iter().enumerate().flat_map(|(i, b)| {
        (0..8)
            .filter(move |j| b & (1 << j) != 0)
            .map(move |j| (i * 8 + j) as u32)
    })
}

impl Serialize for Moves {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            return self.items.serialize(s);
        }
        let size = self.size;
        let (bits, values) = pack(
            &self.items,
            |m| m.h,
            |m, out| {
                out.extend_from_slice(&quantize(m.x, size).to_le_bytes());
                out.extend_from_slice(&quantize(m.y, size).to_le_bytes());
            },
        );
        let mut t = s.serialize_tuple(3)?;
        t.serialize_element(&size)?;
        t.serialize_element(&Raw(&bits))?;
        t.serialize_element(&Raw(&values))?;
        t.end()
    }
}

impl<'de> Deserialize<'de> for Moves {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            return Ok(Moves {
                size: 0.0,
                items: Vec::deserialize(d)?,
            });
        }
        let (size, bits, values): (f32, Vec<u8>, Vec<u8>) = Deserialize::deserialize(d)?;
        if bits.len() * 8 > MAX_HANDLE {
            return Err(de::Error::custom("moves bitmap too large"));
        }
        let hs: Vec<u32> = handles(&bits).collect();
        if values.len() != hs.len() * 4 {
            return Err(de::Error::custom("moves: bitmap and positions disagree"));
        }
        let items = hs
            .into_iter()
            .zip(values.chunks_exact(4))
            .map(|(h, c)| Move {
                h,
                x: dequantize(u16::from_le_bytes([c[0], c[1]]), size),
                y: dequantize(u16::from_le_bytes([c[2], c[3]]), size),
            })
            .collect();
        Ok(Moves { size, items })
    }
}

impl Serialize for Steers {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            return self.items.serialize(s);
        }
        let (bits, values) = pack(
            &self.items,
            |v| v.h,
            |v, out| {
                out.extend_from_slice(&v.vx.to_le_bytes());
                out.extend_from_slice(&v.vy.to_le_bytes());
            },
        );
        let mut t = s.serialize_tuple(2)?;
        t.serialize_element(&Raw(&bits))?;
        t.serialize_element(&Raw(&values))?;
        t.end()
    }
}

impl<'de> Deserialize<'de> for Steers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            return Ok(Steers {
                items: Vec::deserialize(d)?,
            });
        }
        let (bits, values): (Vec<u8>, Vec<u8>) = Deserialize::deserialize(d)?;
        if bits.len() * 8 > MAX_HANDLE {
            return Err(de::Error::custom("steers bitmap too large"));
        }
        let hs: Vec<u32> = handles(&bits).collect();
        if values.len() != hs.len() * 8 {
            return Err(de::Error::custom("steers: bitmap and velocities disagree"));
        }
        let f = |b: &[u8]| f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let items = hs
            .into_iter()
            .zip(values.chunks_exact(8))
            .map(|(h, c)| Steer {
                h,
                vx: f(&c[..4]),
                vy: f(&c[4..]),
            })
            .collect();
        Ok(Steers { items })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_moves_are_a_bitmap_and_quantized_positions() {
        let moves = Moves {
            size: 1000.0,
            items: vec![
                Move {
                    h: 9,
                    x: 1000.0,
                    y: 0.0,
                },
                Move {
                    h: 0,
                    x: 500.0,
                    y: 250.0,
                },
            ],
        };
        let bytes = postcard::to_allocvec(&moves).unwrap();
        // size (4) + bitmap (len 1 + 2 bytes) + values (len 1 + 8 bytes)
        assert_eq!(bytes.len(), 4 + 3 + 9);
        assert_eq!(&bytes[4..7], &[2, 0b0000_0001, 0b0000_0010]);
        let back: Moves = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back.items.iter().map(|m| m.h).collect::<Vec<_>>(), vec![0, 9]);
        assert!((back.items[0].x - 500.0).abs() < 0.01 && (back.items[0].y - 250.0).abs() < 0.01);
        assert_eq!((back.items[1].x, back.items[1].y), (1000.0, 0.0));
    }

    #[test]
    fn binary_steers_keep_exact_floats_and_json_is_readable() {
        let steers = Steers {
            items: vec![Steer {
                h: 3,
                vx: -99.123_45,
                vy: 0.1,
            }],
        };
        let back: Steers = postcard::from_bytes(&postcard::to_allocvec(&steers).unwrap()).unwrap();
        assert_eq!(back, steers);
        let json = serde_json::to_string(&steers).unwrap();
        assert_eq!(json, r#"[{"h":3,"vx":-99.12345,"vy":0.1}]"#);
        assert_eq!(serde_json::from_str::<Steers>(&json).unwrap(), steers);
    }

    #[test]
    fn inconsistent_binary_is_refused_not_panicking() {
        let bad = postcard::to_allocvec(&(vec![0xffu8], vec![0u8; 3])).unwrap();
        assert!(postcard::from_bytes::<Steers>(&bad).is_err());
        let bad = postcard::to_allocvec(&(1000.0f32, vec![0x01u8], vec![0u8; 5])).unwrap();
        assert!(postcard::from_bytes::<Moves>(&bad).is_err());
    }
}
