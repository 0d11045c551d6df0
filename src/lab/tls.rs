//! The lab's own certificate authority and server certificate (rcgen), so clients verify the
//! lab like a real server by pinning `ca.pem` instead of switching verification off.
//!
//! The CA is made once per lab directory and kept, so a pinned `ca.pem` stays valid across
//! `down`/`up`. The server certificate is reissued on every fresh start (the listen address
//! may have changed). rcgen here cannot parse certificates back (no `x509-parser`), so the
//! issuer is rebuilt from the saved CA key and the same fixed parameters: name, key usages
//! and key identifier method are all the issuer needs to sign.

use std::fs;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use super::layout::Layout;
use super::{LabError, DOMAIN};

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "mailswarm lab CA");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "mailswarm");
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// Makes sure `ca.pem` exists and issues a fresh server certificate for `listen`,
/// `127.0.0.1`, `localhost` and the lab host names.
pub(crate) fn prepare(layout: &Layout, listen: Ipv4Addr, backend: &str) -> Result<(), LabError> {
    fs::create_dir_all(layout.tls_dir())
        .map_err(|e| LabError::io(format!("creating {}", layout.tls_dir().display()), e))?;
    let ca_key = match fs::read_to_string(layout.ca_key()) {
        Ok(pem) if layout.ca_cert().exists() => KeyPair::from_pem(&pem).map_err(LabError::Tls)?,
        _ => {
            let key = KeyPair::generate().map_err(LabError::Tls)?;
            let cert = ca_params().self_signed(&key).map_err(LabError::Tls)?;
            write_secret(&layout.ca_key(), &key.serialize_pem())?;
            write_public(&layout.ca_cert(), &cert.pem())?;
            key
        }
    };
    let issuer = Issuer::new(ca_params(), ca_key);

    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        format!("mx.{DOMAIN}"),
        format!("{backend}.{DOMAIN}"),
        DOMAIN.to_string(),
    ];
    if listen != Ipv4Addr::LOCALHOST {
        names.push(listen.to_string());
    }
    let mut params = CertificateParams::new(names).map_err(LabError::Tls)?;
    params
        .distinguished_name
        .push(DnType::CommonName, format!("{backend}.{DOMAIN}"));
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().map_err(LabError::Tls)?;
    let cert = params.signed_by(&key, &issuer).map_err(LabError::Tls)?;
    write_secret(&layout.server_key(), &key.serialize_pem())?;
    write_public(&layout.server_cert(), &cert.pem())?;
    Ok(())
}

fn write_public(path: &Path, pem: &str) -> Result<(), LabError> {
    fs::write(path, pem).map_err(|e| LabError::io(format!("writing {}", path.display()), e))
}

/// Private keys: mode 0600 from the start, written to a temporary name and renamed so a
/// reader never sees half a key.
fn write_secret(path: &Path, pem: &str) -> Result<(), LabError> {
    let tmp = path.with_extension("tmp");
    let io = |e| LabError::io(format!("writing {}", path.display()), e);
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    file.write_all(pem.as_bytes()).map_err(io)?;
    drop(file);
    fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use std::sync::Arc;

    fn verify(layout: &Layout, name: &str) -> Result<(), rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(layout.ca_cert()).unwrap())
            .unwrap();
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        let leaf = CertificateDer::from_pem_file(layout.server_cert()).unwrap();
        let name = ServerName::try_from(name.to_string()).unwrap();
        verifier
            .verify_server_cert(&leaf, &[], &name, &[], UnixTime::now())
            .map(|_| ())
    }

    #[test]
    fn server_certificate_chains_to_the_kept_ca() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        prepare(&layout, Ipv4Addr::new(127, 0, 0, 5), "b1").unwrap();
        let ca_first = fs::read_to_string(layout.ca_cert()).unwrap();
        verify(&layout, "127.0.0.1").unwrap();
        verify(&layout, "127.0.0.5").unwrap();
        verify(&layout, "localhost").unwrap();
        verify(&layout, "mx.lab.test").unwrap();
        assert!(
            verify(&layout, "127.0.0.9").is_err(),
            "address not in the cert"
        );

        // A second start reissues the server certificate with the same CA.
        let leaf_first = fs::read_to_string(layout.server_cert()).unwrap();
        prepare(&layout, Ipv4Addr::LOCALHOST, "b1").unwrap();
        assert_eq!(fs::read_to_string(layout.ca_cert()).unwrap(), ca_first);
        assert_ne!(
            fs::read_to_string(layout.server_cert()).unwrap(),
            leaf_first
        );
        verify(&layout, "127.0.0.1").unwrap();

        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(layout.ca_key()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
