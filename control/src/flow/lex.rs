//! The tokenizer of `ovs-ofctl` flow text and its scalar value parsers.
//!
//! [`Lexer`] splits text into `key`, `key=value`, `key:value` and
//! `key(value)` items the way OVS's `ofputil_parse_key_value()` does: items
//! are separated by commas and white space, a `:`/`=` value runs to the next
//! separator, and a parenthesized value runs to the matching `)` (parentheses
//! nest, also inside `:`/`=` values). Every item keeps its byte position in
//! the original text so errors can point at it. The scalar parsers (numbers,
//! ports, addresses) return a plain reason string; callers attach positions.
//!
//! It does not know what keys mean: that is `parse.rs`.

use std::net::Ipv4Addr;

use super::FlowError;
use crate::types::{MacAddr, PortNo};

/// Bytes that separate items.
const SEPARATORS: &[u8] = b", \t\r\n";
/// Bytes that end a key.
const KEY_END: &[u8] = b":=(, \t\r\n";

/// How a key is followed by its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delim {
    /// A bare key.
    None,
    /// `key:value`.
    Colon,
    /// `key=value`.
    Equals,
    /// `key(value)`.
    Paren,
}

/// One item: a key and its optional value, with byte positions in the source.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Kv<'a> {
    /// The key text.
    pub key: &'a str,
    /// Byte position of the key.
    pub key_pos: usize,
    /// How the value is attached.
    pub delim: Delim,
    /// Byte position of the delimiter (only meaningful when `delim != None`).
    pub delim_pos: usize,
    /// The value text (empty for a bare key).
    pub value: &'a str,
    /// Byte position of the value.
    pub value_pos: usize,
    /// Byte position just past the item (past the closing `)` if any).
    pub end: usize,
}

impl<'a> Kv<'a> {
    /// The whole item as written, for error messages.
    pub fn text(&self, src: &'a str) -> &'a str {
        src.get(self.key_pos..self.end).unwrap_or(self.key)
    }

    /// A lexer over the value, positions still relative to the whole source.
    pub fn value_lexer(&self, src: &'a str) -> Lexer<'a> {
        Lexer::range(src, self.value_pos, self.value_pos + self.value.len())
    }
}

/// Splits `src[pos..end]` into [`Kv`] items.
#[derive(Debug)]
pub(crate) struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    end: usize,
}

impl<'a> Lexer<'a> {
    /// A lexer over all of `src`.
    pub fn new(src: &'a str) -> Lexer<'a> {
        Lexer::range(src, 0, src.len())
    }

    /// A lexer over `src[start..end]`; positions stay relative to `src`.
    pub fn range(src: &'a str, start: usize, end: usize) -> Lexer<'a> {
        let end = end.min(src.len());
        Lexer {
            src,
            pos: start.min(end),
            end,
        }
    }

    /// The next item, `None` at the end.
    pub fn next_kv(&mut self) -> Result<Option<Kv<'a>>, FlowError> {
        let b = self.src.as_bytes();
        while self.pos < self.end && SEPARATORS.contains(&b[self.pos]) {
            self.pos += 1;
        }
        if self.pos >= self.end {
            return Ok(None);
        }
        let start = self.pos;
        let mut k = start;
        while k < self.end && !KEY_END.contains(&b[k]) {
            k += 1;
        }
        if k == start {
            let tok = char_at(self.src, start);
            return Err(FlowError::at(self.src, start, tok, "expected a keyword"));
        }
        let key = &self.src[start..k];
        let mut kv = Kv {
            key,
            key_pos: start,
            delim: Delim::None,
            delim_pos: k,
            value: "",
            value_pos: k,
            end: k,
        };
        if k >= self.end {
            self.pos = self.end;
            return Ok(Some(kv));
        }
        match b[k] {
            b':' | b'=' => {
                kv.delim = if b[k] == b':' {
                    Delim::Colon
                } else {
                    Delim::Equals
                };
                let vstart = k + 1;
                let vend = self.scan_value(vstart)?;
                kv.value = &self.src[vstart..vend];
                kv.value_pos = vstart;
                kv.end = vend;
                self.pos = if vend < self.end { vend + 1 } else { self.end };
            }
            b'(' => {
                let close = self.matching_paren(k)?;
                kv.delim = Delim::Paren;
                kv.value = &self.src[k + 1..close];
                kv.value_pos = k + 1;
                kv.end = close + 1;
                self.pos = close + 1;
            }
            _ => {
                // A separator ends a bare key.
                self.pos = k + 1;
            }
        }
        Ok(Some(kv))
    }

    /// End of a `:`/`=` value starting at `start`: the next separator outside parentheses.
    fn scan_value(&self, start: usize) -> Result<usize, FlowError> {
        let b = self.src.as_bytes();
        let mut i = start;
        while i < self.end && !SEPARATORS.contains(&b[i]) {
            if b[i] == b'(' {
                i = self.matching_paren(i)?;
            }
            i += 1;
        }
        Ok(i)
    }

    /// Position of the `)` matching the `(` at `open`.
    fn matching_paren(&self, open: usize) -> Result<usize, FlowError> {
        let b = self.src.as_bytes();
        let mut level = 0usize;
        let mut i = open + 1;
        while i < self.end {
            match b[i] {
                b'(' => level += 1,
                b')' if level == 0 => return Ok(i),
                b')' => level -= 1,
                _ => {}
            }
            i += 1;
        }
        Err(FlowError::at(self.src, open, "(", "missing ')'"))
    }
}

/// The character at byte `pos` of `s`, as a string slice.
fn char_at(s: &str, pos: usize) -> &str {
    s.get(pos..)
        .and_then(|t| t.chars().next().map(|c| &t[..c.len_utf8()]))
        .unwrap_or("")
}

/// Parses a decimal or `0x` hexadecimal unsigned number.
///
/// Multi-digit decimals with a leading zero are refused: OVS reads them as
/// octal, so accepting them as decimal would silently change their meaning.
pub(crate) fn parse_u64(s: &str) -> Result<u64, String> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        if h.is_empty() || !h.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("invalid hexadecimal number {s:?}"));
        }
        return u64::from_str_radix(h, 16).map_err(|_| format!("number {s} is too large"));
    }
    if s.is_empty() {
        return Err("missing number".into());
    }
    if !s.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!("invalid number {s:?}"));
    }
    if s.len() > 1 && s.starts_with('0') {
        return Err(format!(
            "{s}: a leading zero is octal in OVS; write it in decimal without the zero or as 0x hex"
        ));
    }
    s.parse::<u64>()
        .map_err(|_| format!("number {s} is too large"))
}

/// Parses a number that must fit in `bits` bits.
pub(crate) fn parse_uint(s: &str, bits: u32) -> Result<u64, String> {
    let v = parse_u64(s)?;
    if bits < 64 && v >> bits != 0 {
        return Err(format!("{s} does not fit in {bits} bits"));
    }
    Ok(v)
}

/// Parses a table number, 0-254.
pub(crate) fn parse_table(s: &str) -> Result<u8, String> {
    let v = parse_u64(s)?;
    if v > u64::from(super::MAX_TABLE) {
        return Err(format!("table {s} is out of range (0-254)"));
    }
    Ok(v as u8)
}

/// Parses a port: a number 1..=[`PortNo::MAX`], or `LOCAL`/`IN_PORT` (any case).
pub(crate) fn parse_port(s: &str) -> Result<PortNo, String> {
    if s.eq_ignore_ascii_case("local") {
        return Ok(PortNo::LOCAL);
    }
    if s.eq_ignore_ascii_case("in_port") {
        return Ok(PortNo::IN_PORT);
    }
    if s.bytes().next().is_some_and(|c| c.is_ascii_digit()) {
        let v = parse_u64(s)?;
        if v == 0 {
            return Err("port 0 is not a valid port".into());
        }
        if v > u64::from(PortNo::MAX.0) {
            return Err(format!("port {s} is out of range (1-{})", PortNo::MAX.0));
        }
        return Ok(PortNo(v as u32));
    }
    Err(format!(
        "{s:?} is not a port number (port names are not supported)"
    ))
}

/// Parses an IPv4 address.
pub(crate) fn parse_ipv4(s: &str) -> Result<Ipv4Addr, String> {
    s.parse::<Ipv4Addr>()
        .map_err(|_| format!("{s:?} is not an IPv4 address"))
}

/// Parses `A.B.C.D`, `A.B.C.D/N` or `A.B.C.D/M.M.M.M` into `(value, mask)`.
pub(crate) fn parse_ipv4_masked(s: &str) -> Result<(u64, u64), String> {
    let (addr, mask) = match s.split_once('/') {
        None => (s, None),
        Some((a, m)) => (a, Some(m)),
    };
    let ip = u64::from(u32::from(parse_ipv4(addr)?));
    let mask = match mask {
        None => 0xffff_ffff,
        Some(m) if m.contains('.') => u64::from(u32::from(parse_ipv4(m)?)),
        Some(m) => {
            if m.is_empty() || !m.bytes().all(|c| c.is_ascii_digit()) || m.len() > 2 {
                return Err(format!("{m:?} is not a prefix length or dotted mask"));
            }
            let n: u32 = m
                .parse()
                .map_err(|_| format!("{m:?} is not a prefix length"))?;
            if n > 32 {
                return Err(format!("prefix length /{n} is longer than 32"));
            }
            if n == 0 {
                0
            } else {
                u64::from(u32::MAX << (32 - n))
            }
        }
    };
    Ok((ip & mask, mask))
}

/// Parses a MAC address.
pub(crate) fn parse_mac(s: &str) -> Result<u64, String> {
    s.parse::<MacAddr>()
        .map(MacAddr::to_u64)
        .map_err(|_| format!("{s:?} is not a MAC address"))
}

/// Parses `MAC` or `MAC/MASK` into `(value, mask)`.
pub(crate) fn parse_mac_masked(s: &str) -> Result<(u64, u64), String> {
    match s.split_once('/') {
        None => Ok((parse_mac(s)?, 0xffff_ffff_ffff)),
        Some((v, m)) => {
            let mask = parse_mac(m)?;
            Ok((parse_mac(v)? & mask, mask))
        }
    }
}

/// Parses `V` or `V/M` (when `maskable`) for a `bits`-wide integer field.
pub(crate) fn parse_int_masked(s: &str, bits: u32, maskable: bool) -> Result<(u64, u64), String> {
    let full = if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    match s.split_once('/') {
        None => Ok((parse_uint(s, bits)?, full)),
        Some(_) if !maskable => Err("this field cannot be masked".into()),
        Some((v, m)) => {
            let value = parse_uint(v, bits)?;
            let mask = parse_u64(m)?;
            if mask & !full != 0 {
                return Err(format!("mask {m} is wider than the {bits}-bit field"));
            }
            Ok((value & mask, mask))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(s: &str) -> Vec<(String, Delim, String)> {
        let mut l = Lexer::new(s);
        let mut v = Vec::new();
        while let Some(kv) = l.next_kv().unwrap() {
            v.push((kv.key.to_string(), kv.delim, kv.value.to_string()));
        }
        v
    }

    #[test]
    fn splits_like_ovs() {
        assert_eq!(
            items(" a=1, b:2 c(x,(y)) d,e=f(g,h)i"),
            vec![
                ("a".into(), Delim::Equals, "1".into()),
                ("b".into(), Delim::Colon, "2".into()),
                ("c".into(), Delim::Paren, "x,(y)".into()),
                ("d".into(), Delim::None, "".into()),
                ("e".into(), Delim::Equals, "f(g,h)i".into()),
            ]
        );
        assert!(Lexer::new("ct(commit").next_kv().is_err());
        assert!(Lexer::new("=1").next_kv().is_err());
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u64("0x1F"), Ok(31));
        assert_eq!(parse_u64("0"), Ok(0));
        assert!(parse_u64("010").is_err());
        assert!(parse_u64("+1").is_err());
        assert!(parse_u64("0x").is_err());
        assert!(parse_u64("18446744073709551616").is_err());
        assert_eq!(parse_u64("0xffffffffffffffff"), Ok(u64::MAX));
        assert!(parse_uint("256", 8).is_err());
        assert_eq!(
            parse_int_masked("0x1000/0xf000", 16, true),
            Ok((0x1000, 0xf000))
        );
        assert!(parse_int_masked("1/0x10000", 16, true).is_err());
    }

    #[test]
    fn addresses() {
        assert_eq!(
            parse_ipv4_masked("10.0.0.5/24"),
            Ok((0x0a00_0000, 0xffff_ff00))
        );
        assert_eq!(
            parse_ipv4_masked("10.0.0.5/255.0.255.0"),
            Ok((0x0a00_0000, 0xff00_ff00))
        );
        assert_eq!(parse_ipv4_masked("1.2.3.4/0"), Ok((0, 0)));
        assert!(parse_ipv4_masked("1.2.3.4/33").is_err());
        assert!(parse_ipv4_masked("1.2.3/8").is_err());
        assert_eq!(
            parse_mac_masked("01:00:00:00:00:00/01:00:00:00:00:00"),
            Ok((0x0100_0000_0000, 0x0100_0000_0000))
        );
        assert_eq!(parse_port("LOCAL"), Ok(PortNo::LOCAL));
        assert!(parse_port("0").is_err());
        assert!(parse_port("eth0").is_err());
    }
}
