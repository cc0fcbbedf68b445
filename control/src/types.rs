//! Newtypes for identifiers and addresses, with the text forms OVS uses.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An Ethernet MAC address, printed as `aa:bb:cc:dd:ee:ff`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// `00:00:00:00:00:00`.
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// True for group (multicast and broadcast) addresses: the I/G bit is set.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }

    /// The address as the low 48 bits of a `u64` (first octet most significant).
    pub fn to_u64(self) -> u64 {
        self.0
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
    }

    /// The inverse of [`MacAddr::to_u64`]; bits above 48 are ignored.
    pub fn from_u64(v: u64) -> MacAddr {
        let b = v.to_be_bytes();
        MacAddr([b[2], b[3], b[4], b[5], b[6], b[7]])
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The text was not a MAC address of the form `aa:bb:cc:dd:ee:ff`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address {0:?}: expected six hex octets like aa:bb:cc:dd:ee:ff")]
pub struct MacParseError(pub String);

impl FromStr for MacAddr {
    type Err = MacParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for o in out.iter_mut() {
            let p = parts.next().ok_or_else(|| MacParseError(s.to_string()))?;
            if p.is_empty() || p.len() > 2 {
                return Err(MacParseError(s.to_string()));
            }
            *o = u8::from_str_radix(p, 16).map_err(|_| MacParseError(s.to_string()))?;
        }
        if parts.next().is_some() {
            return Err(MacParseError(s.to_string()));
        }
        Ok(MacAddr(out))
    }
}

impl TryFrom<String> for MacAddr {
    type Error = MacParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<MacAddr> for String {
    fn from(m: MacAddr) -> String {
        m.to_string()
    }
}

/// An OpenFlow port number (`ofport`). Reserved ports use OpenFlow 1.3 values.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default, Serialize, Deserialize,
)]
pub struct PortNo(pub u32);

impl PortNo {
    /// Send the packet out the port it came in on (`in_port`).
    pub const IN_PORT: PortNo = PortNo(0xffff_fff8);
    /// The switch's local port (`local`).
    pub const LOCAL: PortNo = PortNo(0xffff_fffe);
    /// Any port; used as "no port" in matches and FDB lookups.
    pub const ANY: PortNo = PortNo(0xffff_ffff);
    /// Highest number usable for a physical or virtual port.
    pub const MAX: PortNo = PortNo(0xffff_ff00);
}

impl fmt::Display for PortNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PortNo::LOCAL => f.write_str("LOCAL"),
            PortNo::IN_PORT => f.write_str("IN_PORT"),
            PortNo::ANY => f.write_str("ANY"),
            PortNo(n) => write!(f, "{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_round_trip() {
        let m: MacAddr = "0a:1b:2c:3d:4e:5f".parse().unwrap();
        assert_eq!(m.to_string(), "0a:1b:2c:3d:4e:5f");
        assert_eq!(MacAddr::from_u64(m.to_u64()), m);
        assert!("0a:1b:2c:3d:4e".parse::<MacAddr>().is_err());
        assert!("0a:1b:2c:3d:4e:5f:00".parse::<MacAddr>().is_err());
        assert!("0a:1b:2c:3d:4e:zz".parse::<MacAddr>().is_err());
        assert!(MacAddr::BROADCAST.is_multicast());
        assert!(!m.is_multicast());
    }
}
