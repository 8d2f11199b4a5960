//! A minimal HTTP/1.1 client for the few plain requests the load tester makes (world, login, metrics): one
//! connection per request (`Connection: close`), body read to the end, `Content-Length` or chunked.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The largest response body accepted.
const MAX_RESPONSE: usize = 32 * 1024 * 1024;

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("timed out")]
    Timeout,
    #[error("malformed response")]
    Malformed,
    #[error("HTTP {status}: {body}")]
    Status { status: u16, body: String },
}

impl HttpError {
    /// A short stable name for failure counts.
    pub fn kind(&self, what: &str) -> String {
        match self {
            HttpError::Connect(_) => format!("{what}_connect"),
            HttpError::Io(_) => format!("{what}_io"),
            HttpError::Timeout => format!("{what}_timeout"),
            HttpError::Malformed => format!("{what}_malformed"),
            HttpError::Status { status, .. } => format!("{what}_http_{status}"),
        }
    }
}

/// Sends one request and returns the body of a 2xx answer.
pub async fn request(
    addr: SocketAddr,
    host: &str,
    method: &str,
    path: &str,
    json_body: Option<&str>,
    timeout: Duration,
) -> Result<Vec<u8>, HttpError> {
    tokio::time::timeout(timeout, request_inner(addr, host, method, path, json_body))
        .await
        .map_err(|_| HttpError::Timeout)?
}

async fn request_inner(
    addr: SocketAddr,
    host: &str,
    method: &str,
    path: &str,
    json_body: Option<&str>,
) -> Result<Vec<u8>, HttpError> {
    let mut stream = TcpStream::connect(addr).await.map_err(HttpError::Connect)?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAccept: */*\r\n");
    if let Some(body) = json_body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
    } else {
        req.push_str("\r\n");
    }
    stream.write_all(req.as_bytes()).await?;
    let mut raw = Vec::with_capacity(4096);
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&chunk[..n]);
        if raw.len() > MAX_RESPONSE {
            return Err(HttpError::Malformed);
        }
        // Stop early once a Content-Length body is complete (the server may keep the socket a little longer).
        if let Some(done) = complete_length(&raw) {
            raw.truncate(done);
            break;
        }
    }
    let (status, body) = parse_response(&raw)?;
    if !(200..300).contains(&status) {
        return Err(HttpError::Status {
            status,
            body: String::from_utf8_lossy(&body).chars().take(300).collect(),
        });
    }
    Ok(body)
}

/// When `raw` holds a head with `Content-Length` and the whole body, the total length.
fn complete_length(raw: &[u8]) -> Option<usize> {
    let end = crate::ws::head_end(raw)?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let len = header(head, "content-length")?.parse::<usize>().ok()?;
    (raw.len() >= end + len).then_some(end + len)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Splits a whole response into its status and decoded body.
pub fn parse_response(raw: &[u8]) -> Result<(u16, Vec<u8>), HttpError> {
    let end = crate::ws::head_end(raw).ok_or(HttpError::Malformed)?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| HttpError::Malformed)?;
    let status = head
        .split("\r\n")
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or(HttpError::Malformed)?;
    let rest = &raw[end..];
    let chunked = header(head, "transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(len) = header(head, "content-length").and_then(|v| v.parse::<usize>().ok()) {
        rest.get(..len).ok_or(HttpError::Malformed)?.to_vec()
    } else {
        rest.to_vec()
    };
    Ok((status, body))
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, HttpError> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").ok_or(HttpError::Malformed)?;
        let size_text = std::str::from_utf8(&data[..line_end]).map_err(|_| HttpError::Malformed)?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| HttpError::Malformed)?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(data.get(..size).ok_or(HttpError::Malformed)?);
        data = data.get(size + 2..).ok_or(HttpError::Malformed)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_length_and_chunked_bodies() {
        let raw = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
        assert_eq!(parse_response(raw).unwrap(), (200, b"hello".to_vec()));
        assert_eq!(complete_length(raw), Some(raw.len()));
        assert_eq!(complete_length(&raw[..raw.len() - 1]), None);
        let chunked =
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap(), (404, b"abcde".to_vec()));
        let eof = b"HTTP/1.1 200 OK\r\n\r\nall of it";
        assert_eq!(parse_response(eof).unwrap(), (200, b"all of it".to_vec()));
        assert!(parse_response(b"garbage").is_err());
    }
}
