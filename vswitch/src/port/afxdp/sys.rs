//! The few system facts the AF_XDP port needs beyond xsk-rs: which XDP
//! program (if any) is attached to an interface and in which mode (one
//! rtnetlink `RTM_GETLINK` request, built and parsed by hand so it needs no
//! unsafe and no netlink crate), and a bpffs at `/sys/fs/bpf` for libxdp.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::Once;

use nix::sys::socket::{self, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType};
use nix::sys::time::TimeVal;

/// How an XDP program is attached to an interface (`IFLA_XDP_ATTACHED`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpAttach {
    /// No program.
    None,
    /// Native (driver) mode: `ip link` shows `xdp`.
    Native,
    /// Generic (SKB) mode: `ip link` shows `xdpgeneric`.
    Skb,
    /// Offloaded to the NIC.
    Offload,
    /// Several programs in different modes.
    Multi,
}

impl XdpAttach {
    /// Short name, as in `detail()`: `none`, `native`, `skb`, `offload`, `multi`.
    pub fn as_str(self) -> &'static str {
        match self {
            XdpAttach::None => "none",
            XdpAttach::Native => "native",
            XdpAttach::Skb => "skb",
            XdpAttach::Offload => "offload",
            XdpAttach::Multi => "multi",
        }
    }
}

impl std::fmt::Display for XdpAttach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The XDP state of one interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XdpLinkState {
    /// Attach mode.
    pub attach: XdpAttach,
    /// The program id (`IFLA_XDP_PROG_ID`), 0 when none (or several).
    pub prog_id: u32,
}

const NLMSG_HDR: usize = 16;
const IFINFOMSG: usize = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWLINK: u16 = 16;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const IFLA_XDP: u16 = 43;
const IFLA_XDP_ATTACHED: u16 = 2;
const IFLA_XDP_PROG_ID: u16 = 4;
const NLA_TYPE_MASK: u16 = 0x3fff;

const RTM_SETLINK: u16 = 19;
const NLM_F_ACK: u16 = 4;
const NLA_F_NESTED: u16 = 0x8000;
const IFLA_XDP_FD: u16 = 1;
const IFLA_XDP_FLAGS: u16 = 3;
const XDP_FLAGS_SKB_MODE: u32 = 2;
const XDP_FLAGS_DRV_MODE: u32 = 4;

/// What the kernel answered to one request.
#[derive(Debug)]
enum Reply {
    Ack,
    Link(XdpLinkState),
}

/// Asks the kernel which XDP program is attached to `ifindex` (in the
/// calling thread's network namespace).
pub fn xdp_link_state(ifindex: u32) -> io::Result<XdpLinkState> {
    match request(&link_msg(RTM_GETLINK, NLM_F_REQUEST, ifindex, &[]))? {
        Reply::Link(st) => Ok(st),
        Reply::Ack => Err(io::Error::other("RTM_GETLINK answered with a bare ack")),
    }
}

/// Detaches whatever XDP program is attached to `ifindex` in native or SKB
/// mode and returns what was attached.
///
/// For `vswitchd` start-up only, before it opens its AF_XDP ports: a
/// switch killed with SIGKILL leaves libxdp's `xsk_def_prog` attached with
/// a reference count that never drops, so the program would outlive the
/// next clean exit too. Never call it on an interface whose program another
/// live socket (or another tool) uses.
pub fn detach_xdp(ifindex: u32) -> io::Result<XdpLinkState> {
    let st = xdp_link_state(ifindex)?;
    let flags = match st.attach {
        XdpAttach::Native => XDP_FLAGS_DRV_MODE,
        XdpAttach::Skb => XDP_FLAGS_SKB_MODE,
        XdpAttach::None => return Ok(st),
        XdpAttach::Offload | XdpAttach::Multi => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("XDP attached in {} mode; not detaching", st.attach),
            ))
        }
    };
    let mut inner = attr(IFLA_XDP_FD, &(-1i32).to_ne_bytes());
    inner.extend(attr(IFLA_XDP_FLAGS, &flags.to_ne_bytes()));
    let xdp = attr(IFLA_XDP | NLA_F_NESTED, &inner);
    request(&link_msg(
        RTM_SETLINK,
        NLM_F_REQUEST | NLM_F_ACK,
        ifindex,
        &xdp,
    ))?;
    Ok(st)
}

/// A netlink attribute (header, payload, padding to 4 bytes).
fn attr(kind: u16, val: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(align4(4 + val.len()));
    v.extend_from_slice(&((4 + val.len()) as u16).to_ne_bytes());
    v.extend_from_slice(&kind.to_ne_bytes());
    v.extend_from_slice(val);
    v.resize(align4(v.len()), 0);
    v
}

/// An rtnetlink link message (sequence number 1) for `ifindex`.
fn link_msg(kind: u16, flags: u16, ifindex: u32, attrs: &[u8]) -> Vec<u8> {
    let len = NLMSG_HDR + IFINFOMSG + attrs.len();
    let mut m = vec![0u8; NLMSG_HDR + IFINFOMSG];
    m[0..4].copy_from_slice(&(len as u32).to_ne_bytes());
    m[4..6].copy_from_slice(&kind.to_ne_bytes());
    m[6..8].copy_from_slice(&flags.to_ne_bytes());
    m[8..12].copy_from_slice(&1u32.to_ne_bytes());
    // ifinfomsg: family 0, type 0, index, flags 0, change 0.
    m[NLMSG_HDR + 4..NLMSG_HDR + 8].copy_from_slice(&(ifindex as i32).to_ne_bytes());
    m.extend_from_slice(attrs);
    m
}

/// Sends one request on a fresh rtnetlink socket and waits for its answer.
fn request(msg: &[u8]) -> io::Result<Reply> {
    let fd = socket::socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )?;
    socket::setsockopt(&fd, socket::sockopt::ReceiveTimeout, &TimeVal::new(2, 0))?;
    socket::send(fd.as_raw_fd(), msg, MsgFlags::empty())?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = socket::recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty())?;
        if let Some(r) = parse_reply(&buf[..n], 1) {
            return r;
        }
    }
}

/// Parses one datagram of replies; `None` when it held nothing for `seq`.
fn parse_reply(mut b: &[u8], seq: u32) -> Option<io::Result<Reply>> {
    while b.len() >= NLMSG_HDR {
        let len = u32::from_ne_bytes(b[0..4].try_into().ok()?) as usize;
        let kind = u16::from_ne_bytes(b[4..6].try_into().ok()?);
        let mseq = u32::from_ne_bytes(b[8..12].try_into().ok()?);
        if len < NLMSG_HDR || len > b.len() {
            return Some(Err(io::Error::other("malformed netlink reply")));
        }
        let body = &b[NLMSG_HDR..len];
        if mseq == seq {
            match kind {
                NLMSG_ERROR if body.len() >= 4 => {
                    let err = i32::from_ne_bytes(body[0..4].try_into().ok()?);
                    return Some(if err == 0 {
                        Ok(Reply::Ack)
                    } else {
                        Err(io::Error::from_raw_os_error(-err))
                    });
                }
                RTM_NEWLINK if body.len() >= IFINFOMSG => {
                    return Some(Ok(Reply::Link(parse_link(&body[IFINFOMSG..]))));
                }
                _ => {}
            }
        }
        b = &b[align4(len).min(b.len())..];
    }
    None
}

fn parse_link(attrs: &[u8]) -> XdpLinkState {
    let mut st = XdpLinkState {
        attach: XdpAttach::None,
        prog_id: 0,
    };
    for (kind, val) in Attrs(attrs) {
        if kind != IFLA_XDP {
            continue;
        }
        for (k, v) in Attrs(val) {
            match k {
                IFLA_XDP_ATTACHED if !v.is_empty() => {
                    st.attach = match v[0] {
                        0 => XdpAttach::None,
                        1 => XdpAttach::Native,
                        2 => XdpAttach::Skb,
                        3 => XdpAttach::Offload,
                        _ => XdpAttach::Multi,
                    }
                }
                IFLA_XDP_PROG_ID if v.len() >= 4 => {
                    st.prog_id = u32::from_ne_bytes([v[0], v[1], v[2], v[3]]);
                }
                _ => {}
            }
        }
    }
    st
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Iterator over netlink attributes: (type without flag bits, payload).
struct Attrs<'a>(&'a [u8]);

impl<'a> Iterator for Attrs<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<(u16, &'a [u8])> {
        let b = self.0;
        if b.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let kind = u16::from_ne_bytes([b[2], b[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > b.len() {
            self.0 = &[];
            return None;
        }
        self.0 = &b[align4(len).min(b.len())..];
        Some((kind, &b[4..len]))
    }
}

/// Makes sure a bpffs is mounted at `/sys/fs/bpf`, once per process.
///
/// libxdp pins its dispatcher there; without one it loads a single program
/// without dispatcher, which works (notes/afxdp-veth.md), so failure is
/// only logged.
pub fn ensure_bpffs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        const DIR: &str = "/sys/fs/bpf";
        match nix::sys::statfs::statfs(DIR) {
            Ok(s) if s.filesystem_type() == nix::sys::statfs::BPF_FS_MAGIC => return,
            Ok(_) | Err(_) => {}
        }
        // SAFETY: every pointer is a NUL-terminated string literal that
        // lives for the whole program; `data` may be null for bpffs.
        let rc = unsafe {
            libc::mount(
                c"bpf".as_ptr(),
                c"/sys/fs/bpf".as_ptr(),
                c"bpf".as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        if rc == 0 {
            tracing::info!(dir = DIR, "mounted bpffs");
        } else {
            tracing::warn!(
                dir = DIR,
                error = %io::Error::last_os_error(),
                "bpffs not mounted and mounting it failed; libxdp will load its program without dispatcher"
            );
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn newlink(seq: u32, attrs: &[u8]) -> Vec<u8> {
        let mut m = link_msg(RTM_NEWLINK, 0, 3, attrs);
        m[8..12].copy_from_slice(&seq.to_ne_bytes());
        m
    }

    fn link(r: Option<io::Result<Reply>>) -> XdpLinkState {
        match r {
            Some(Ok(Reply::Link(st))) => st,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn newlink_with_native_xdp_is_parsed() {
        let mut xdp = attr(IFLA_XDP_ATTACHED, &[1]);
        xdp.extend(attr(IFLA_XDP_PROG_ID, &42u32.to_ne_bytes()));
        let mut attrs = attr(3, b"vsw0\0");
        attrs.extend(attr(IFLA_XDP | 0x8000, &xdp));
        let st = link(parse_reply(&newlink(7, &attrs), 7));
        assert_eq!(
            st,
            XdpLinkState {
                attach: XdpAttach::Native,
                prog_id: 42
            }
        );
        // Another request's reply is not ours.
        assert!(parse_reply(&newlink(8, &attrs), 7).is_none());
    }

    #[test]
    fn no_xdp_attribute_means_none_and_errors_carry_errno() {
        let st = link(parse_reply(&newlink(1, &attr(3, b"lo\0")), 1));
        assert_eq!(st.attach, XdpAttach::None);
        let mut err = vec![0u8; NLMSG_HDR + 4];
        err[0..4].copy_from_slice(&((NLMSG_HDR + 4) as u32).to_ne_bytes());
        err[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        err[8..12].copy_from_slice(&1u32.to_ne_bytes());
        err[16..20].copy_from_slice(&(-19i32).to_ne_bytes());
        let e = parse_reply(&err, 1).unwrap().unwrap_err();
        assert_eq!(e.raw_os_error(), Some(19));
        err[16..20].copy_from_slice(&0i32.to_ne_bytes());
        assert!(matches!(parse_reply(&err, 1), Some(Ok(Reply::Ack))));
    }
}
