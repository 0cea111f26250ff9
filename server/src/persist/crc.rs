//! CRC-32C (Castagnoli), the checksum of every log record: the CPU's `crc32` instruction on
//! x86-64 with SSE 4.2, else table-driven, eight bytes a step ("slicing by 8"), so a replay of
//! a large log spends little time on it.
//!
//! Invariant: `crc32c(b"123456789") == 0xE306_9283` (the standard check value).

/// The reflected Castagnoli polynomial.
const POLY: u32 = 0x82F6_3B78;

/// Eight tables: `TABLES[0]` is the byte-at-a-time table, `TABLES[k]` advances it `k` more
/// zero bytes.
static TABLES: [[u32; 256]; 8] = tables();

const fn tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut s = 1;
    while s < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        s += 1;
    }
    t
}

/// The CRC-32C of `data`: the CPU's `crc32` instruction where it has one (SSE 4.2), else the
/// tables.
pub fn crc32c(data: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("sse4.2") {
        // SAFETY: the CPU has SSE 4.2 (checked just above), the only requirement of `hardware`.
        return unsafe { !hardware(!0, data) };
    }
    !software(!0, data)
}

/// The CRC-32C of a payload laid out as a `tag` byte, then `word` (`u64` LE) when given, then
/// each of `strings` as its length (`u32` LE) and its bytes: the layout of every record but a
/// hash's (see `record`). The fixed fields go in from registers, one instruction each, and the
/// strings where they already are (the request's key and value), so nothing is written out to
/// be read back: loads of bytes that several small stores have only just written stall the
/// CPU (they cannot be forwarded from the stores), and a pass over each short field as a slice
/// made the checksum 1-4% of a shard's time under `everysec`.
pub fn crc32c_record(tag: u8, word: Option<u64>, strings: &[&[u8]]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("sse4.2") {
        // SAFETY: the CPU has SSE 4.2 (checked just above), the only requirement of
        // `hardware_record`.
        return unsafe { hardware_record(tag, word, strings) };
    }
    software_record(tag, word, strings)
}

/// [`crc32c_record`] with the SSE 4.2 `crc32` instruction.
///
/// # Safety
/// The CPU must support SSE 4.2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2")]
unsafe fn hardware_record(tag: u8, word: Option<u64>, strings: &[&[u8]]) -> u32 {
    use std::arch::x86_64::{_mm_crc32_u32, _mm_crc32_u64, _mm_crc32_u8};
    let mut crc = _mm_crc32_u8(!0u32, tag);
    if let Some(word) = word {
        crc = _mm_crc32_u64(u64::from(crc), word) as u32;
    }
    for s in strings {
        crc = _mm_crc32_u32(crc, s.len() as u32);
        crc = hardware(crc, s);
    }
    !crc
}

/// Advances the running CRC-32C `crc` (not inverted) over `data` with the SSE 4.2 `crc32`
/// instruction, eight bytes a step.
///
/// # Safety
/// The CPU must support SSE 4.2.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "sse4.2")]
unsafe fn hardware(crc: u32, data: &[u8]) -> u32 {
    use std::arch::x86_64::{_mm_crc32_u32, _mm_crc32_u64, _mm_crc32_u8};
    let mut wide = u64::from(crc);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let word = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        wide = _mm_crc32_u64(wide, word);
    }
    let mut crc = wide as u32;
    let mut rest = chunks.remainder();
    if let [a, b, c, d, tail @ ..] = rest {
        crc = _mm_crc32_u32(crc, u32::from_le_bytes([*a, *b, *c, *d]));
        rest = tail;
    }
    for &b in rest {
        crc = _mm_crc32_u8(crc, b);
    }
    crc
}

/// [`crc32c_record`] from the tables.
fn software_record(tag: u8, word: Option<u64>, strings: &[&[u8]]) -> u32 {
    let mut crc = software(!0, &[tag]);
    if let Some(word) = word {
        crc = software(crc, &word.to_le_bytes());
    }
    for s in strings {
        crc = software(crc, &(s.len() as u32).to_le_bytes());
        crc = software(crc, s);
    }
    !crc
}

/// Advances the running CRC-32C `crc` (not inverted) over `data` from the tables (slicing by
/// 8).
fn software(mut crc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let lo = crc ^ u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        crc = TABLES[7][(lo & 0xff) as usize]
            ^ TABLES[6][((lo >> 8) & 0xff) as usize]
            ^ TABLES[5][((lo >> 16) & 0xff) as usize]
            ^ TABLES[4][(lo >> 24) as usize]
            ^ TABLES[3][c[4] as usize]
            ^ TABLES[2][c[5] as usize]
            ^ TABLES[1][c[6] as usize]
            ^ TABLES[0][c[7] as usize];
    }
    for &b in chunks.remainder() {
        crc = (crc >> 8) ^ TABLES[0][((crc ^ u32::from(b)) & 0xff) as usize];
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::{crc32c, crc32c_record};

    #[test]
    fn standard_check_values() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        // Slicing and byte-at-a-time agree on every length around the 8-byte step.
        let data: Vec<u8> = (0..40u8).collect();
        for n in 0..data.len() {
            let slow = data[..n].iter().fold(!0u32, |c, &b| {
                let mut c = c ^ u32::from(b);
                for _ in 0..8 {
                    c = if c & 1 != 0 { (c >> 1) ^ super::POLY } else { c >> 1 };
                }
                c
            });
            assert_eq!(crc32c(&data[..n]), !slow, "length {n}");
            assert_eq!(!super::software(!0, &data[..n]), !slow, "length {n}, tables");
        }
    }

    /// The payload `crc32c_record` describes, written out.
    fn laid_out(tag: u8, word: Option<u64>, strings: &[&[u8]]) -> Vec<u8> {
        let mut out = vec![tag];
        if let Some(word) = word {
            out.extend_from_slice(&word.to_le_bytes());
        }
        for s in strings {
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s);
        }
        out
    }

    /// A record's checksum from its fields is the checksum of the payload written out, for
    /// strings of every length around the 8- and 4-byte steps, with and without the word, on
    /// both paths.
    #[test]
    fn a_records_checksum_from_its_fields_is_that_of_its_payload() {
        let data: Vec<u8> = (0..37u8).map(|b| b.wrapping_mul(59)).collect();
        for i in 0..=data.len() {
            for j in i..=data.len() {
                let strings: [&[u8]; 2] = [&data[..i], &data[i..j]];
                for word in [None, Some(0), Some(0x0123_4567_89AB_CDEF)] {
                    let whole = crc32c(&laid_out(7, word, &strings));
                    assert_eq!(crc32c_record(7, word, &strings), whole, "cut at {i} and {j}, {word:?}");
                    assert_eq!(super::software_record(7, word, &strings), whole, "cut at {i} and {j}, tables");
                }
            }
        }
        assert_eq!(crc32c_record(4, None, &[]), crc32c(&[4]));
        assert_eq!(crc32c_record(3, None, &[b"key"]), crc32c(&laid_out(3, None, &[b"key"])));
    }
}
