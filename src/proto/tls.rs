//! TLS for every protocol client: one place that turns the user's trust settings into a
//! `tokio_rustls::TlsConnector`, runs handshakes under a deadline, and lets sessions hold a
//! plain or an encrypted socket behind one type.
//!
//! Trust is explicit: the webpki roots by default, a pinned CA (the lab's) from a PEM file, or
//! an opt-in verifier that accepts any certificate for servers whose certificate we cannot
//! check. The `ring` provider is passed to rustls directly so no process-wide default has to
//! be installed first.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::ErrorKind;

/// Deadline for a whole TLS handshake when the caller has no better value.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How the client decides whether to trust a server certificate.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// PEM file with the CA certificate(s) to trust instead of the webpki roots (the lab CA).
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate without checking chain or name. Handshake signatures are still
    /// verified, so the peer must hold the key of the certificate it shows.
    pub insecure: bool,
    /// Name sent in SNI and checked against the certificate; defaults to the target host.
    pub server_name: Option<String>,
}

/// Why TLS set-up or a handshake failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("cannot read CA file {path}: {reason} (give a PEM file with CERTIFICATE blocks)")]
    CaFile { path: PathBuf, reason: String },
    #[error("invalid TLS server name {name:?}: use a DNS name or an IP address")]
    ServerName { name: String },
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    #[error("TLS handshake failed: {0}")]
    Handshake(#[source] io::Error),
    #[error("TLS handshake did not finish within {0:?}")]
    HandshakeTimeout(Duration),
}

impl TlsError {
    /// A handshake that never finishes is counted as a timeout; everything else is TLS.
    pub fn kind(&self) -> ErrorKind {
        match self {
            TlsError::HandshakeTimeout(_) => ErrorKind::Timeout,
            _ => ErrorKind::Tls,
        }
    }
}

impl TlsSettings {
    /// Builds the connector once; it is cheap to clone and share between all sessions.
    pub fn connector(&self) -> Result<TlsConnector, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let config = if self.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(DangerousAcceptAnyCertificate {
                    algorithms: provider.signature_verification_algorithms,
                }))
                .with_no_client_auth()
        } else {
            let roots = match &self.ca_file {
                Some(path) => load_ca_file(path)?,
                None => RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                },
            };
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        Ok(TlsConnector::from(Arc::new(config)))
    }

    /// The name to present: the configured one, else `host` (the target's host or address).
    pub fn server_name(&self, host: &str) -> Result<ServerName<'static>, TlsError> {
        parse_server_name(self.server_name.as_deref().unwrap_or(host))
    }
}

/// Parses a DNS name or an IP address for SNI and certificate checks.
pub fn parse_server_name(name: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(name.to_owned()).map_err(|_| TlsError::ServerName {
        name: name.to_owned(),
    })
}

fn load_ca_file(path: &Path) -> Result<RootCertStore, TlsError> {
    let ca_error = |reason: String| TlsError::CaFile {
        path: path.to_owned(),
        reason,
    };
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| ca_error(e.to_string()))?;
    for cert in certs {
        let cert = cert.map_err(|e| ca_error(e.to_string()))?;
        roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(ca_error("no certificate in the file".into()));
    }
    Ok(roots)
}

/// Runs the client handshake over any stream (a fresh TCP socket or one after STARTTLS).
pub async fn handshake<S>(
    stream: S,
    server_name: ServerName<'static>,
    connector: &TlsConnector,
    deadline: Duration,
) -> Result<TlsStream<S>, TlsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match tokio::time::timeout(deadline, connector.connect(server_name, stream)).await {
        Ok(Ok(tls)) => Ok(tls),
        Ok(Err(err)) => Err(TlsError::Handshake(err)),
        Err(_) => Err(TlsError::HandshakeTimeout(deadline)),
    }
}

/// Implicit TLS (IMAPS, SMTPS) on a connected socket, with [`DEFAULT_HANDSHAKE_TIMEOUT`].
pub async fn connect_tls(
    tcp: TcpStream,
    server_name: ServerName<'static>,
    connector: &TlsConnector,
) -> Result<TlsStream<TcpStream>, TlsError> {
    handshake(tcp, server_name, connector, DEFAULT_HANDSHAKE_TIMEOUT).await
}

/// Accepts every certificate. Only for `--insecure`: the name says what it does so nobody
/// mistakes it for a real verifier.
#[derive(Debug)]
struct DangerousAcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for DangerousAcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A session's socket, plain or encrypted, so one session type serves both.
#[derive(Debug)]
pub enum MaybeTlsStream {
    Plain(TcpStream),
    /// Boxed: a client `TlsStream` is over 1 KiB and would bloat every plain session.
    Tls(Box<TlsStream<TcpStream>>),
}

impl MaybeTlsStream {
    pub fn is_tls(&self) -> bool {
        matches!(self, MaybeTlsStream::Tls(_))
    }

    /// The TCP socket underneath (for addresses and socket options).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            MaybeTlsStream::Plain(tcp) => tcp,
            MaybeTlsStream::Tls(tls) => tls.get_ref().0,
        }
    }
}

impl From<TcpStream> for MaybeTlsStream {
    fn from(tcp: TcpStream) -> Self {
        MaybeTlsStream::Plain(tcp)
    }
}

impl From<TlsStream<TcpStream>> for MaybeTlsStream {
    fn from(tls: TlsStream<TcpStream>) -> Self {
        MaybeTlsStream::Tls(Box::new(tls))
    }
}

impl AsyncRead for MaybeTlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTlsStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MaybeTlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTlsStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            MaybeTlsStream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            MaybeTlsStream::Plain(s) => s.is_write_vectored(),
            MaybeTlsStream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeTlsStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTlsStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MaybeTlsStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A CA and a server certificate for `localhost` signed by it.
    struct TestPki {
        ca_pem: String,
        server_cert: CertificateDer<'static>,
        server_key: PrivateKeyDer<'static>,
    }

    fn test_pki() -> TestPki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "mailswarm test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, &ca_key);
        let server_key = KeyPair::generate().unwrap();
        let server_params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();
        TestPki {
            ca_pem: ca_cert.pem(),
            server_cert: server_cert.der().clone(),
            server_key: PrivatePkcs8KeyDer::from(server_key.serialize_der()).into(),
        }
    }

    /// A TLS echo server for one connection: reads a line, writes it back.
    async fn tls_echo_server(pki: &TestPki) -> std::net::SocketAddr {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![pki.server_cert.clone()], pki.server_key.clone_key())
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            // A client that rejects the certificate aborts the handshake: not an error here.
            if let Ok(mut tls) = acceptor.accept(tcp).await {
                let mut buf = [0u8; 64];
                let n = tls.read(&mut buf).await.unwrap();
                tls.write_all(&buf[..n]).await.unwrap();
                tls.flush().await.unwrap();
            }
        });
        addr
    }

    async fn handshake_with(settings: &TlsSettings, host: &str) -> Result<(), TlsError> {
        let pki = test_pki();
        let addr = tls_echo_server(&pki).await;
        let connector = settings.connector()?;
        let tcp = TcpStream::connect(addr).await.unwrap();
        let tls = connect_tls(tcp, settings.server_name(host)?, &connector).await?;
        // Data goes through the session, and through `MaybeTlsStream` too.
        let mut stream = MaybeTlsStream::from(tls);
        assert!(stream.is_tls());
        assert_eq!(stream.tcp().peer_addr().unwrap(), addr);
        stream.write_all(b"ping\r\n").await.unwrap();
        stream.flush().await.unwrap();
        let mut echoed = [0u8; 6];
        stream.read_exact(&mut echoed).await.unwrap();
        assert_eq!(&echoed, b"ping\r\n");
        Ok(())
    }

    fn ca_file(pki_pem: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), pki_pem).unwrap();
        file
    }

    #[tokio::test]
    async fn pinned_ca_is_trusted() {
        let pki = test_pki();
        let addr = tls_echo_server(&pki).await;
        let file = ca_file(&pki.ca_pem);
        let settings = TlsSettings {
            ca_file: Some(file.path().to_owned()),
            ..TlsSettings::default()
        };
        let connector = settings.connector().unwrap();
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = settings.server_name("localhost").unwrap();
        let mut tls = connect_tls(tcp, name, &connector).await.unwrap();
        tls.write_all(b"hi\r\n").await.unwrap();
        let mut echoed = [0u8; 4];
        tls.read_exact(&mut echoed).await.unwrap();
        assert_eq!(&echoed, b"hi\r\n");
    }

    #[tokio::test]
    async fn unknown_ca_is_a_tls_error() {
        // Default settings trust only the webpki roots, which did not sign the test CA.
        let err = handshake_with(&TlsSettings::default(), "localhost")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Tls);
        assert!(err.to_string().contains("certificate"), "{err}");
    }

    #[tokio::test]
    async fn another_ca_is_a_tls_error() {
        let other = test_pki();
        let file = ca_file(&other.ca_pem);
        let settings = TlsSettings {
            ca_file: Some(file.path().to_owned()),
            ..TlsSettings::default()
        };
        let err = handshake_with(&settings, "localhost").await.unwrap_err();
        assert!(matches!(err, TlsError::Handshake(_)), "{err}");
    }

    #[tokio::test]
    async fn wrong_name_with_the_right_ca_is_a_tls_error() {
        let pki = test_pki();
        let addr = tls_echo_server(&pki).await;
        let file = ca_file(&pki.ca_pem);
        let settings = TlsSettings {
            ca_file: Some(file.path().to_owned()),
            server_name: Some("mx.elsewhere.test".into()),
            ..TlsSettings::default()
        };
        let connector = settings.connector().unwrap();
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = settings.server_name("localhost").unwrap();
        let err = connect_tls(tcp, name, &connector).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Tls);
        assert!(err.to_string().contains("not valid for name"), "{err}");
    }

    #[tokio::test]
    async fn insecure_accepts_an_unknown_ca_and_a_wrong_name() {
        let settings = TlsSettings {
            insecure: true,
            ..TlsSettings::default()
        };
        handshake_with(&settings, "mx.elsewhere.test")
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn handshake_deadline() {
        // A server that accepts TCP but never answers the ClientHello.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _server = tokio::spawn(async move {
            let (_tcp, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(3600)).await;
        });
        let connector = TlsSettings::default().connector().unwrap();
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = parse_server_name("localhost").unwrap();
        let deadline = Duration::from_millis(200);
        let err = handshake(tcp, name, &connector, deadline)
            .await
            .unwrap_err();
        assert!(matches!(err, TlsError::HandshakeTimeout(_)));
        assert_eq!(err.kind(), ErrorKind::Timeout);
    }

    #[test]
    fn bad_ca_files_are_explained() {
        let missing = TlsSettings {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..TlsSettings::default()
        };
        let Err(err) = missing.connector() else {
            panic!("missing CA file accepted")
        };
        assert!(matches!(err, TlsError::CaFile { .. }));
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");

        let empty = ca_file("not a certificate\n");
        let settings = TlsSettings {
            ca_file: Some(empty.path().to_owned()),
            ..TlsSettings::default()
        };
        let Err(err) = settings.connector() else {
            panic!("CA file without certificates accepted")
        };
        assert!(err.to_string().contains("no certificate"), "{err}");
    }

    #[test]
    fn server_names() {
        assert!(parse_server_name("mx.lab.test").is_ok());
        assert!(parse_server_name("127.0.0.1").is_ok());
        assert!(matches!(
            parse_server_name("bad name!"),
            Err(TlsError::ServerName { .. })
        ));
        let settings = TlsSettings {
            server_name: Some("imap.lab.test".into()),
            ..TlsSettings::default()
        };
        assert_eq!(
            settings.server_name("127.0.0.1").unwrap(),
            parse_server_name("imap.lab.test").unwrap()
        );
    }
}
