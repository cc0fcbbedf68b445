//! VXLAN headers (RFC 7348): the 8 bytes between the outer UDP header and the
//! inner Ethernet frame.
//!
//! [`VxlanPacket`] reads and writes the flags (the I bit, 0x08, says the VNI is
//! valid) and the 24-bit VNI; its payload is the inner frame. [`VxlanRepr`]
//! builds the header for encapsulation and refuses, on parse, a header without
//! the I bit. Reserved bits are written as zero and ignored on receipt, as the
//! RFC says. What it deliberately does not do: VXLAN-GPE or GBP extensions
//! (their flag bits are reported by `flags()` but not interpreted), or the
//! outer IP/UDP headers (see `ipv4` and `udp`).

use super::{be32, Error, Result};

/// The IANA-assigned UDP destination port for VXLAN.
pub const VXLAN_PORT: u16 = 4789;

/// The I flag: the VNI field is valid.
pub const FLAG_VNI: u8 = 0x08;

/// Largest VNI (24 bits).
pub const MAX_VNI: u32 = 0x00ff_ffff;

/// Byte ranges of the header.
pub mod field {
    /// A byte range in the header.
    pub type Field = core::ops::Range<usize>;
    /// Flags (I = 0x08).
    pub const FLAGS: usize = 0;
    /// Reserved (24 bits).
    pub const RESERVED1: Field = 1..4;
    /// VNI (24 bits).
    pub const VNI: Field = 4..7;
    /// Reserved (8 bits).
    pub const RESERVED2: usize = 7;
}

/// A read/write view of a VXLAN header and the inner frame after it.
#[derive(Debug, Clone)]
pub struct VxlanPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VxlanPacket<T> {
    /// Length of the header.
    pub const HEADER_LEN: usize = 8;

    /// Wraps a buffer without checking it (see the module contract).
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Self {
        VxlanPacket { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the 8-byte header fits.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < Self::HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Returns the underlying buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The flags byte.
    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// True when the I flag says the VNI is valid.
    #[inline]
    pub fn has_vni(&self) -> bool {
        self.flags() & FLAG_VNI != 0
    }

    /// The 24-bit VNI.
    #[inline]
    pub fn vni(&self) -> u32 {
        be32(self.buffer.as_ref(), field::VNI.start) >> 8
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> VxlanPacket<&'a T> {
    /// The inner Ethernet frame.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        let data: &'a [u8] = self.buffer.as_ref();
        &data[Self::HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VxlanPacket<T> {
    /// Sets the flags byte.
    #[inline]
    pub fn set_flags(&mut self, flags: u8) {
        self.buffer.as_mut()[field::FLAGS] = flags;
    }

    /// Sets the VNI (the low 24 bits of `vni`).
    #[inline]
    pub fn set_vni(&mut self, vni: u32) {
        let b = vni.to_be_bytes();
        self.buffer.as_mut()[field::VNI].copy_from_slice(&b[1..4]);
    }

    /// The inner Ethernet frame, mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[Self::HEADER_LEN..]
    }
}

/// A VXLAN header: just the VNI (the I flag is implied).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VxlanRepr {
    /// VXLAN network identifier (24 bits; higher bits are not emitted).
    pub vni: u32,
}

impl VxlanRepr {
    /// Parses a header; [`Error::Unsupported`] without the I flag.
    pub fn parse<T: AsRef<[u8]>>(packet: &VxlanPacket<T>) -> Result<VxlanRepr> {
        packet.check_len()?;
        if !packet.has_vni() {
            return Err(Error::Unsupported);
        }
        Ok(VxlanRepr { vni: packet.vni() })
    }

    /// Bytes [`emit`](Self::emit) writes: the 8-byte header.
    pub const fn buffer_len(&self) -> usize {
        VxlanPacket::<&[u8]>::HEADER_LEN
    }

    /// Writes the header: I flag, reserved bits zero, the VNI.
    /// Panics if the buffer is shorter than 8 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut VxlanPacket<T>) {
        packet.buffer.as_mut()[..VxlanPacket::<&[u8]>::HEADER_LEN].fill(0);
        packet.set_flags(FLAG_VNI);
        packet.set_vni(self.vni);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // I flag, VNI 0x123456, then two bytes of inner frame.
    const HDR: [u8; 10] = [0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0, 0xaa, 0xbb];

    #[test]
    fn golden() {
        let p = VxlanPacket::new_checked(&HDR[..]).unwrap();
        assert_eq!(p.flags(), 0x08);
        assert!(p.has_vni());
        assert_eq!(p.vni(), 0x12_3456);
        assert_eq!(p.payload(), &[0xaa, 0xbb]);
        assert_eq!(VxlanRepr::parse(&p), Ok(VxlanRepr { vni: 0x12_3456 }));
    }

    #[test]
    fn rejects() {
        assert_eq!(
            VxlanPacket::new_checked(&HDR[..7]).unwrap_err(),
            Error::Truncated
        );
        let mut no_i = HDR;
        no_i[0] = 0;
        let p = VxlanPacket::new_checked(&no_i[..]).unwrap();
        assert_eq!(VxlanRepr::parse(&p), Err(Error::Unsupported));
    }

    #[test]
    fn emit_round_trip() {
        let mut buf = [0xffu8; 10];
        let mut p = VxlanPacket::new_unchecked(&mut buf[..]);
        VxlanRepr { vni: MAX_VNI }.emit(&mut p);
        assert_eq!(VxlanRepr::parse(&p), Ok(VxlanRepr { vni: MAX_VNI }));
        p.payload_mut()[0] = 1;
        assert_eq!(buf, [0x08, 0, 0, 0, 0xff, 0xff, 0xff, 0, 1, 0xff]);
    }
}
