//! A blocking client for the daemon's control socket, used by `ofctl` and the
//! CNI shim.
//!
//! One [`Client`] is one connection: [`Client::call`] writes one
//! [`Envelope`] line and reads one [`ReplyEnvelope`] line back, so calls on a
//! connection are strictly sequential (the protocol has no request ids).
//! Every error names the socket path, because the usual mistake is talking
//! to the wrong socket or to none; a daemon's `ok:false` answer comes back as
//! [`ClientError::Daemon`] with its message unchanged (it is already a
//! positioned, user-facing line).
//!
//! Design decisions:
//! - Read and write timeouts (30 s by default) bound every socket operation,
//!   so a wedged daemon turns into an error instead of a hung CNI plugin
//!   (kubelet would kill it with less to say).
//! - A reply of another protocol version is refused before it is looked at:
//!   its fields may mean something else.
//! - A request longer than the daemon accepts ([`MAX_REQUEST_BYTES`]) is
//!   refused here with its size, rather than cut off by the daemon.
//!
//! It does not reconnect, retry or pipeline: a failed call leaves the
//! connection in an unknown state, and callers open a new one.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::api::{Envelope, Reply, ReplyEnvelope, Request, MAX_REQUEST_BYTES, VERSION};

/// Timeout of each read and write on the socket unless one is chosen.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest reply line read. A `dump-flows` of 100k flows is about 40 MiB of
/// JSON; the limit only keeps a misbehaving peer from exhausting memory.
pub const MAX_REPLY_BYTES: u64 = 256 << 20;

/// Why a call to the daemon failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket could not be opened (no daemon, wrong path, no permission).
    #[error("cannot connect to vswitchd at {}: {}{}", .path.display(), os_message(.source), connect_hint(.source))]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// What `connect(2)` said.
        #[source]
        source: io::Error,
    },
    /// Reading from or writing to the socket failed.
    #[error("lost connection to vswitchd at {}: {}", .path.display(), os_message(.source))]
    Io {
        /// The socket path.
        path: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// The daemon did not answer (or take the request) within the timeout.
    #[error("vswitchd at {} did not answer within {}s", .path.display(), .timeout.as_secs_f64())]
    Timeout {
        /// The socket path.
        path: PathBuf,
        /// The timeout that ran out.
        timeout: Duration,
    },
    /// The daemon closed the connection before a whole reply line arrived.
    #[error("vswitchd at {} closed the connection without replying", .path.display())]
    Closed {
        /// The socket path.
        path: PathBuf,
    },
    /// The reply was not a protocol reply.
    #[error("malformed reply from vswitchd at {}: {reason}", .path.display())]
    BadReply {
        /// The socket path.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
    /// The daemon speaks another protocol version.
    #[error("vswitchd at {} speaks protocol version {got}, this client speaks version {VERSION}", .path.display())]
    Version {
        /// The socket path.
        path: PathBuf,
        /// The version the reply carried.
        got: u32,
    },
    /// The request is longer than the daemon reads.
    #[error("request of {len} bytes is larger than vswitchd accepts ({MAX_REQUEST_BYTES} bytes)")]
    TooLarge {
        /// Its length, newline included.
        len: usize,
    },
    /// The request could not be encoded (cannot happen with the API types).
    #[error("cannot encode request: {0}")]
    Encode(#[source] serde_json::Error),
    /// The daemon refused the request; its one-line message.
    #[error("{0}")]
    Daemon(String),
}

/// An `io::Error`'s text without the ` (os error N)` tail that `Display` adds.
fn os_message(e: &io::Error) -> String {
    let s = e.to_string();
    match (e.raw_os_error(), s.rfind(" (os error ")) {
        (Some(_), Some(p)) => s[..p].to_string(),
        _ => s,
    }
}

fn connect_hint(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => " (is vswitchd running?)",
        _ => "",
    }
}

/// A connection to `vswitchd`.
#[derive(Debug)]
pub struct Client {
    path: PathBuf,
    timeout: Option<Duration>,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    /// Connects to the daemon's socket at `path` with [`DEFAULT_TIMEOUT`].
    pub fn connect(path: impl AsRef<Path>) -> Result<Client, ClientError> {
        Client::connect_with_timeout(path, Some(DEFAULT_TIMEOUT))
    }

    /// Connects with a read/write timeout; `None` waits forever.
    pub fn connect_with_timeout(
        path: impl AsRef<Path>,
        timeout: Option<Duration>,
    ) -> Result<Client, ClientError> {
        let path = path.as_ref().to_path_buf();
        let stream = UnixStream::connect(&path).map_err(|source| ClientError::Connect {
            path: path.clone(),
            source,
        })?;
        let writer = stream.try_clone().map_err(|source| ClientError::Io {
            path: path.clone(),
            source,
        })?;
        let mut client = Client {
            path,
            timeout: None,
            reader: BufReader::new(stream),
            writer,
        };
        client.set_timeout(timeout)?;
        Ok(client)
    }

    /// Sets the read and write timeout; `None` waits forever. A zero
    /// duration counts as `None`, as `ovs-ofctl --timeout=0` does.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) -> Result<(), ClientError> {
        let timeout = timeout.filter(|t| !t.is_zero());
        let io = |source| ClientError::Io {
            path: self.path.clone(),
            source,
        };
        // Both halves share one socket, so one set covers reader and writer.
        self.writer.set_read_timeout(timeout).map_err(io)?;
        self.writer.set_write_timeout(timeout).map_err(io)?;
        self.timeout = timeout;
        Ok(())
    }

    /// The socket path this client talks to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends one request and waits for its reply. A daemon's refusal is
    /// [`ClientError::Daemon`] with the daemon's message.
    pub fn call(&mut self, req: Request) -> Result<Reply, ClientError> {
        let env = Envelope {
            version: VERSION,
            request: req,
        };
        let mut line = serde_json::to_vec(&env).map_err(ClientError::Encode)?;
        line.push(b'\n');
        if line.len() > MAX_REQUEST_BYTES {
            return Err(ClientError::TooLarge { len: line.len() });
        }
        self.writer
            .write_all(&line)
            .and_then(|()| self.writer.flush())
            .map_err(|e| self.io_error(e))?;

        let mut buf = Vec::new();
        (&mut self.reader)
            .take(MAX_REPLY_BYTES)
            .read_until(b'\n', &mut buf)
            .map_err(|e| self.io_error(e))?;
        if buf.last() != Some(&b'\n') {
            if buf.len() as u64 >= MAX_REPLY_BYTES {
                return Err(self.bad_reply(format!("longer than {MAX_REPLY_BYTES} bytes")));
            }
            return Err(ClientError::Closed {
                path: self.path.clone(),
            });
        }
        self.decode(&buf)
    }

    fn decode(&self, line: &[u8]) -> Result<Reply, ClientError> {
        // The version is checked before the rest, which may not parse under
        // another version's rules.
        #[derive(serde::Deserialize)]
        struct Versioned {
            version: u32,
        }
        let v: Versioned = serde_json::from_slice(line).map_err(|e| self.bad_reply(e))?;
        if v.version != VERSION {
            return Err(ClientError::Version {
                path: self.path.clone(),
                got: v.version,
            });
        }
        let env: ReplyEnvelope = serde_json::from_slice(line).map_err(|e| self.bad_reply(e))?;
        match (env.ok, env.reply, env.error) {
            (true, Some(reply), _) => Ok(reply),
            (true, None, _) => Err(self.bad_reply("\"ok\":true without a \"reply\"")),
            (false, _, Some(msg)) => Err(ClientError::Daemon(msg)),
            (false, _, None) => Err(ClientError::Daemon(
                "vswitchd refused the request without saying why".into(),
            )),
        }
    }

    fn io_error(&self, e: io::Error) -> ClientError {
        match (e.kind(), self.timeout) {
            (io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut, Some(timeout)) => {
                ClientError::Timeout {
                    path: self.path.clone(),
                    timeout,
                }
            }
            _ => ClientError::Io {
                path: self.path.clone(),
                source: e,
            },
        }
    }

    fn bad_reply(&self, reason: impl ToString) -> ClientError {
        ClientError::BadReply {
            path: self.path.clone(),
            reason: reason.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::thread::{self, JoinHandle};

    /// A socket path in a fresh directory, removed when dropped.
    struct TempSocket {
        dir: PathBuf,
    }

    impl TempSocket {
        fn new() -> TempSocket {
            static N: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "vswitch-client-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).unwrap();
            TempSocket { dir }
        }

        fn path(&self) -> PathBuf {
            self.dir.join("s.sock")
        }
    }

    impl Drop for TempSocket {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// A fake daemon: accepts one connection and answers each request line
    /// with the next canned line, returning the request lines it saw.
    fn serve(sock: &TempSocket, replies: Vec<String>) -> JoinHandle<Vec<String>> {
        let listener = UnixListener::bind(sock.path()).unwrap();
        thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut out = stream.try_clone().unwrap();
            let mut reader = BufReader::new(stream);
            let mut seen = Vec::new();
            for reply in replies {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap() == 0 {
                    break;
                }
                seen.push(line);
                out.write_all(reply.as_bytes()).unwrap();
            }
            seen
        })
    }

    fn line(env: &ReplyEnvelope) -> String {
        format!("{}\n", serde_json::to_string(env).unwrap())
    }

    #[test]
    fn call_sends_one_versioned_line_and_decodes_the_reply() {
        let sock = TempSocket::new();
        let server = serve(
            &sock,
            vec![
                line(&ReplyEnvelope::ok(Reply::Count { count: 2 })),
                line(&ReplyEnvelope::ok(Reply::Done)),
            ],
        );
        let mut c = Client::connect(sock.path()).unwrap();
        assert_eq!(c.path(), sock.path());
        let r = c.call(Request::AddFlows {
            flows: "ip,actions=drop\narp,actions=normal\n".into(),
        });
        assert_eq!(r.unwrap(), Reply::Count { count: 2 });
        // A second call on the same connection.
        assert_eq!(c.call(Request::Show {}).unwrap(), Reply::Done);
        let seen = server.join().unwrap();
        assert_eq!(
            seen[0],
            "{\"version\":1,\"request\":{\"cmd\":\"add-flows\",\
             \"flows\":\"ip,actions=drop\\narp,actions=normal\\n\"}}\n"
        );
        assert_eq!(seen[1], "{\"version\":1,\"request\":{\"cmd\":\"show\"}}\n");
    }

    #[test]
    fn daemon_refusal_is_its_message() {
        let sock = TempSocket::new();
        let msg = "column 4 near \"nw_sorc\": unknown match field";
        let server = serve(&sock, vec![line(&ReplyEnvelope::err(msg))]);
        let mut c = Client::connect(sock.path()).unwrap();
        let e = c
            .call(Request::DumpFlows {
                filter: "ip,nw_sorc=1.2.3.4".into(),
            })
            .unwrap_err();
        assert!(matches!(&e, ClientError::Daemon(m) if m == msg), "{e:?}");
        assert_eq!(e.to_string(), msg);
        server.join().unwrap();
    }

    #[test]
    fn missing_socket_names_the_path() {
        let sock = TempSocket::new();
        let e = Client::connect(sock.path()).unwrap_err();
        assert!(matches!(e, ClientError::Connect { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!(
                "cannot connect to vswitchd at {}: No such file or directory (is vswitchd running?)",
                sock.path().display()
            )
        );
    }

    #[test]
    fn other_protocol_version_is_refused() {
        let sock = TempSocket::new();
        let server = serve(
            &sock,
            vec!["{\"version\":2,\"ok\":true,\"reply\":{\"kind\":\"teleported\"}}\n".into()],
        );
        let mut c = Client::connect(sock.path()).unwrap();
        let e = c.call(Request::Show {}).unwrap_err();
        assert!(matches!(e, ClientError::Version { got: 2, .. }), "{e:?}");
        assert!(e.to_string().contains("protocol version 2"), "{e}");
        server.join().unwrap();
    }

    #[test]
    fn malformed_and_missing_replies_are_errors() {
        let sock = TempSocket::new();
        let server = serve(
            &sock,
            vec![
                "not json\n".into(),
                "{\"version\":1,\"ok\":true}\n".into(),
                "{\"version\":1,\"ok\":false}\n".into(),
                // Half a line, then the daemon hangs up.
                "{\"version\":1,".into(),
            ],
        );
        let mut c = Client::connect(sock.path()).unwrap();
        let e = c.call(Request::Show {}).unwrap_err();
        assert!(matches!(e, ClientError::BadReply { .. }), "{e:?}");
        assert!(e
            .to_string()
            .starts_with("malformed reply from vswitchd at "));
        let e = c.call(Request::Show {}).unwrap_err();
        assert!(matches!(e, ClientError::BadReply { .. }), "{e:?}");
        let e = c.call(Request::Show {}).unwrap_err();
        assert!(matches!(e, ClientError::Daemon(_)), "{e:?}");
        let e = c.call(Request::Show {}).unwrap_err();
        assert!(matches!(e, ClientError::Closed { .. }), "{e:?}");
        server.join().unwrap();
    }

    #[test]
    fn silent_daemon_times_out() {
        let sock = TempSocket::new();
        let listener = UnixListener::bind(sock.path()).unwrap();
        let server = thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut line = String::new();
            BufReader::new(&stream).read_line(&mut line).unwrap();
            // Hold the connection open, answering nothing, until the
            // client gives up and closes it.
            let mut rest = Vec::new();
            let _ = (&stream).read_to_end(&mut rest);
        });
        let mut c =
            Client::connect_with_timeout(sock.path(), Some(Duration::from_millis(100))).unwrap();
        let e = c.call(Request::FdbShow {}).unwrap_err();
        assert!(matches!(e, ClientError::Timeout { .. }), "{e:?}");
        assert!(e.to_string().ends_with("did not answer within 0.1s"), "{e}");
        drop(c);
        server.join().unwrap();
    }

    #[test]
    fn oversized_request_is_refused_before_sending() {
        let sock = TempSocket::new();
        let listener = UnixListener::bind(sock.path()).unwrap();
        let mut c = Client::connect(sock.path()).unwrap();
        let e = c
            .call(Request::AddFlows {
                flows: "x".repeat(MAX_REQUEST_BYTES),
            })
            .unwrap_err();
        assert!(matches!(e, ClientError::TooLarge { .. }), "{e:?}");
        // Nothing was written.
        let (stream, _) = listener.accept().unwrap();
        drop(c);
        let mut got = Vec::new();
        (&stream).read_to_end(&mut got).unwrap();
        assert!(got.is_empty());
    }
}
