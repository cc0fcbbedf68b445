//! The packet buffer pool: a slab of fixed-size frames with a free list.
//!
//! Buffers are addressed by index, so descriptors are small `Copy` values
//! and a worker's batch never holds references into the slab. Each frame
//! keeps [`HEADROOM`] bytes in front of the data for headers pushed by
//! actions (VLAN tags, VXLAN encapsulation) without moving the payload.

/// Bytes per frame buffer (one page per two frames, as AF_XDP's 2048 mode).
pub const FRAME_SIZE: usize = 2048;
/// Bytes kept free in front of a received frame for pushed headers.
pub const HEADROOM: usize = 256;

/// A packet in a pool: frame index, data offset and length.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Desc {
    /// Index of the frame buffer in its pool.
    pub frame: u32,
    /// Offset of the first byte of the packet inside the frame.
    pub off: u16,
    /// Length of the packet in bytes.
    pub len: u16,
}

/// A slab of `n` frames of [`FRAME_SIZE`] bytes and a free list.
#[derive(Debug)]
pub struct PacketPool {
    mem: Box<[u8]>,
    free: Vec<u32>,
    frames: u32,
}

impl PacketPool {
    /// A pool of `frames` buffers, all free.
    pub fn new(frames: u32) -> PacketPool {
        PacketPool {
            mem: vec![0u8; frames as usize * FRAME_SIZE].into_boxed_slice(),
            free: (0..frames).rev().collect(),
            frames,
        }
    }

    /// Total number of frames.
    pub fn capacity(&self) -> u32 {
        self.frames
    }

    /// Number of free frames.
    pub fn available(&self) -> usize {
        self.free.len()
    }

    /// Takes a free frame; the descriptor has the default headroom and length 0.
    #[inline]
    pub fn alloc(&mut self) -> Option<Desc> {
        self.free.pop().map(|frame| Desc {
            frame,
            off: HEADROOM as u16,
            len: 0,
        })
    }

    /// Returns a frame to the free list.
    #[inline]
    pub fn free(&mut self, d: Desc) {
        debug_assert!(d.frame < self.frames);
        debug_assert!(
            self.free.len() < self.frames as usize,
            "more frees than frames"
        );
        self.free.push(d.frame);
    }

    /// The packet bytes of `d`.
    #[inline]
    pub fn data(&self, d: Desc) -> &[u8] {
        let base = d.frame as usize * FRAME_SIZE + d.off as usize;
        &self.mem[base..base + d.len as usize]
    }

    /// The packet bytes of `d`, writable.
    #[inline]
    pub fn data_mut(&mut self, d: Desc) -> &mut [u8] {
        let base = d.frame as usize * FRAME_SIZE + d.off as usize;
        &mut self.mem[base..base + d.len as usize]
    }

    /// The whole frame buffer of `d` (headroom included), writable.
    #[inline]
    pub fn frame_mut(&mut self, frame: u32) -> &mut [u8] {
        let base = frame as usize * FRAME_SIZE;
        &mut self.mem[base..base + FRAME_SIZE]
    }

    /// Allocates a frame and copies `bytes` into it after the headroom.
    /// `None` when the pool is empty or `bytes` does not fit.
    pub fn alloc_copy(&mut self, bytes: &[u8]) -> Option<Desc> {
        if bytes.len() > FRAME_SIZE - HEADROOM {
            return None;
        }
        let mut d = self.alloc()?;
        d.len = bytes.len() as u16;
        self.data_mut(d).copy_from_slice(bytes);
        Some(d)
    }

    /// Copies packet `d` into a new frame (same headroom).
    pub fn clone_packet(&mut self, d: Desc) -> Option<Desc> {
        let mut n = self.alloc()?;
        n.off = d.off;
        n.len = d.len;
        let src = d.frame as usize * FRAME_SIZE + d.off as usize;
        let dst = n.frame as usize * FRAME_SIZE + d.off as usize;
        self.mem.copy_within(src..src + d.len as usize, dst);
        Some(n)
    }

    /// Grows the packet at the front by `n` bytes (uses headroom); returns false if none left.
    #[inline]
    pub fn push_front(&mut self, d: &mut Desc, n: u16) -> bool {
        if d.off < n {
            return false;
        }
        d.off -= n;
        d.len += n;
        true
    }

    /// Shrinks the packet at the front by `n` bytes.
    #[inline]
    pub fn pull_front(&mut self, d: &mut Desc, n: u16) -> bool {
        if d.len < n {
            return false;
        }
        d.off += n;
        d.len -= n;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_copy_clone_free_account_for_every_frame() {
        let mut p = PacketPool::new(4);
        let a = p.alloc_copy(&[1, 2, 3]).unwrap();
        let b = p.clone_packet(a).unwrap();
        assert_eq!(p.data(b), &[1, 2, 3]);
        assert_ne!(a.frame, b.frame);
        assert_eq!(p.available(), 2);
        let mut c = a;
        assert!(p.push_front(&mut c, 2));
        p.data_mut(c)[..2].copy_from_slice(&[9, 9]);
        assert_eq!(p.data(c), &[9, 9, 1, 2, 3]);
        assert!(p.pull_front(&mut c, 4));
        assert_eq!(p.data(c), &[3]);
        p.free(c);
        p.free(b);
        assert_eq!(p.available(), 4);
        assert!(p.alloc_copy(&[0u8; FRAME_SIZE]).is_none());
    }
}
