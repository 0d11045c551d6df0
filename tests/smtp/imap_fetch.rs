//! Just enough IMAP4rev1 to read delivered messages back: LOGIN, SELECT, UID SEARCH HEADER,
//! UID FETCH BODY.PEEK[] with its literal.

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::Target;

pub async fn imap_fetch_by_subject(target: &Target, user: &str, subject: &str) -> Vec<Vec<u8>> {
    imap_fetch_by_header(target, user, "Subject", subject).await
}

/// Every message in `user`'s INBOX whose header `field` contains `value`, as `BODY[]`.
pub async fn imap_fetch_by_header(
    target: &Target,
    user: &str,
    field: &str,
    value: &str,
) -> Vec<Vec<u8>> {
    let stream = TcpStream::connect(target.imap).await.expect("IMAP connect");
    let mut imap = BufReader::new(stream);
    let mut line = String::new();
    imap.read_line(&mut line).await.unwrap();
    assert!(line.starts_with("* OK"), "{line}");
    imap_command(&mut imap, &format!("a LOGIN {user} {}", target.password)).await;
    imap_command(&mut imap, "b SELECT INBOX").await;
    let search = imap_command(&mut imap, &format!("c UID SEARCH HEADER {field} {value}")).await;
    let uids: Vec<String> = search
        .iter()
        .filter_map(|l| l.strip_prefix(b"* SEARCH"))
        .flat_map(|rest| {
            String::from_utf8_lossy(rest)
                .split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect();
    let mut messages = Vec::new();
    for uid in uids {
        imap.get_mut()
            .write_all(format!("d UID FETCH {uid} BODY.PEEK[]\r\n").as_bytes())
            .await
            .unwrap();
        let mut body = None;
        loop {
            let mut line = Vec::new();
            imap.read_until(b'\n', &mut line).await.unwrap();
            assert!(!line.is_empty(), "IMAP server closed");
            if line.starts_with(b"d ") {
                assert!(
                    line.starts_with(b"d OK"),
                    "{}",
                    String::from_utf8_lossy(&line)
                );
                break;
            }
            let text = String::from_utf8_lossy(&line);
            if let Some(len) = text
                .trim_end()
                .strip_suffix('}')
                .and_then(|t| t.rsplit_once('{'))
            {
                let mut literal = vec![0; len.1.parse().unwrap()];
                imap.read_exact(&mut literal).await.unwrap();
                body = Some(literal);
            }
        }
        messages.push(body.expect("FETCH returned a literal"));
    }
    imap_command(&mut imap, "e LOGOUT").await;
    messages
}

/// Sends a tagged command and returns the response lines; asserts OK.
async fn imap_command(imap: &mut BufReader<TcpStream>, command: &str) -> Vec<Vec<u8>> {
    let tag = command.split(' ').next().unwrap().to_owned();
    imap.get_mut()
        .write_all(format!("{command}\r\n").as_bytes())
        .await
        .unwrap();
    let mut lines = Vec::new();
    loop {
        let mut line = Vec::new();
        imap.read_until(b'\n', &mut line).await.unwrap();
        assert!(!line.is_empty(), "IMAP server closed during {command}");
        if line.starts_with(format!("{tag} ").as_bytes()) {
            let status = String::from_utf8_lossy(&line);
            assert!(
                status.starts_with(&format!("{tag} OK")),
                "{command}: {status}"
            );
            return lines;
        }
        lines.push(line);
    }
}
