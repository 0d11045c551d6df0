//! Readiness probes: a server is up when its port accepts *and* it greets (a listening socket
//! alone only proves the master bound it). Blocking std sockets on purpose: `lab` runs
//! before any runtime exists and must not need one.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
const MAX_GREETING: usize = 2048;

/// True when nothing listens on `addr` (we could bind it ourselves).
pub(crate) fn port_free(addr: SocketAddr) -> bool {
    TcpListener::bind(addr).is_ok()
}

/// Connects and returns the first line the server sends.
pub(crate) fn greeting(addr: SocketAddr) -> io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(PROBE_TIMEOUT))?;
    read_line(&mut stream)
}

/// Connects with TLS, verifying the server against `ca_file` for its IP address, and returns
/// the first line sent inside TLS.
pub(crate) fn tls_greeting(addr: SocketAddr, ca_file: &Path) -> io::Result<String> {
    let config = client_config(ca_file)?;
    let name = ServerName::IpAddress(addr.ip().into());
    let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(io::Error::other)?;
    let sock = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT)?;
    sock.set_nodelay(true)?;
    sock.set_read_timeout(Some(PROBE_TIMEOUT))?;
    sock.set_write_timeout(Some(PROBE_TIMEOUT))?;
    let mut tls = rustls::StreamOwned::new(conn, sock);
    read_line(&mut tls)
}

fn client_config(ca_file: &Path) -> io::Result<rustls::ClientConfig> {
    let ca = CertificateDer::from_pem_file(ca_file)
        .map_err(|e| io::Error::other(format!("reading {}: {e}", ca_file.display())))?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).map_err(io::Error::other)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn read_line(stream: &mut impl Read) -> io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.len() < MAX_GREETING {
        match stream.read(&mut byte)? {
            0 => break,
            _ if byte[0] == b'\n' => break,
            _ => line.push(byte[0]),
        }
    }
    if line.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "closed without a greeting",
        ));
    }
    Ok(String::from_utf8_lossy(&line).trim_end().to_string())
}

/// One listener to wait for.
pub(crate) struct Probe<'a> {
    pub what: &'static str,
    pub addr: SocketAddr,
    /// The greeting must start with this (`* OK`, `220 `).
    pub expect: &'static str,
    /// Verify TLS against this CA before reading the greeting.
    pub tls_ca: Option<&'a Path>,
}

/// Why a probe did not succeed before the deadline.
#[derive(Debug)]
pub(crate) struct ProbeFailure {
    pub what: &'static str,
    pub addr: SocketAddr,
    pub last: String,
    pub died: bool,
}

/// Polls `probe` until it greets as expected, the deadline passes, or `alive` says the
/// daemon died (then there is no point in waiting).
pub(crate) fn wait_ready(
    probe: &Probe<'_>,
    deadline: Instant,
    alive: impl Fn() -> bool,
) -> Result<String, ProbeFailure> {
    loop {
        let result = match probe.tls_ca {
            Some(ca) => tls_greeting(probe.addr, ca),
            None => greeting(probe.addr),
        };
        let last = match result {
            Ok(line) if line.starts_with(probe.expect) => return Ok(line),
            Ok(line) => format!("unexpected greeting {line:?}"),
            Err(err) => err.to_string(),
        };
        let died = !alive();
        if died || Instant::now() >= deadline {
            return Err(ProbeFailure {
                what: probe.what,
                addr: probe.addr,
                last,
                died,
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn greeting_reads_one_line_and_port_free_sees_listeners() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        assert!(!port_free(addr));
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(b"* OK hello\r\n* second line\r\n").unwrap();
        });
        assert_eq!(greeting(addr).unwrap(), "* OK hello");
        server.join().unwrap();
    }

    #[test]
    fn silent_close_is_an_error_not_an_empty_greeting() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || drop(listener.accept().unwrap()));
        let err = greeting(addr).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        server.join().unwrap();
    }
}
