//! The few system calls the daemon makes directly: `poll()` over raw fds,
//! an eventfd to wake a sleeping worker, and SCHED_FIFO for workers.
//!
//! Invariants: every fd passed in is open for the duration of the call (the
//! caller owns the ports and the eventfd); buffers passed to the kernel are
//! plain local integers of the size the call expects.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Blocks until one of `fds` is readable or `timeout_ms` passes. Returns the
/// number of ready fds (0 on timeout); EINTR counts as a timeout.
pub fn poll_readable(fds: &[RawFd], timeout_ms: i32) -> io::Result<usize> {
    poll_ready(fds, timeout_ms).map(|m| m.count_ones() as usize)
}

/// Like [`poll_readable`], but says which: bit `i` is set when `fds[i]` is
/// readable (or in error) (only the first 64 fds are polled).
pub fn poll_ready(fds: &[RawFd], timeout_ms: i32) -> io::Result<u64> {
    let mut pfds = [libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    }; 64];
    let n = fds.len().min(pfds.len());
    for (p, fd) in pfds.iter_mut().zip(fds) {
        p.fd = *fd;
        p.events = libc::POLLIN;
    }
    // SAFETY: `pfds` is a valid array of `n` initialised pollfd structs that
    // lives across the call; the kernel only writes `revents`.
    let r = unsafe { libc::poll(pfds.as_mut_ptr(), n as libc::nfds_t, timeout_ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(pfds[..n]
        .iter()
        .enumerate()
        .filter(|(_, p)| p.revents != 0)
        .fold(0u64, |m, (i, _)| m | 1 << i))
}

/// A non-blocking eventfd used as a doorbell.
#[derive(Debug)]
pub struct EventFd(OwnedFd);

impl EventFd {
    /// A new doorbell.
    pub fn new() -> io::Result<EventFd> {
        // SAFETY: eventfd takes no pointers; a negative return is an error.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by eventfd and is owned by no one else.
        Ok(EventFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Rings the doorbell.
    pub fn ring(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a local u64 to our own eventfd. A full
        // counter (EAGAIN) already means "rung", so the result is ignored.
        let _ = unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Clears the doorbell.
    pub fn clear(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a local u64 from our own eventfd;
        // EAGAIN (not rung) is fine.
        let _ = unsafe { libc::read(self.0.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }

    /// The fd, for `poll_readable`.
    pub fn raw(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// Runs the calling thread under SCHED_FIFO at `priority` (1-99).
pub fn set_fifo(priority: u8) -> io::Result<()> {
    let p = libc::sched_param {
        sched_priority: i32::from(priority),
    };
    // SAFETY: `p` is a valid sched_param on the stack; pid 0 is this thread.
    let r = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &p) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eventfd_wakes_poll() {
        let e = EventFd::new().unwrap();
        assert_eq!(poll_readable(&[e.raw()], 0).unwrap(), 0);
        assert_eq!(poll_ready(&[e.raw(), e.raw()], 0).unwrap(), 0);
        e.ring();
        assert_eq!(poll_readable(&[e.raw()], 1000).unwrap(), 1);
        let quiet = EventFd::new().unwrap();
        assert_eq!(poll_ready(&[quiet.raw(), e.raw()], 0).unwrap(), 0b10);
        e.clear();
        assert_eq!(poll_readable(&[e.raw()], 0).unwrap(), 0);
    }
}
