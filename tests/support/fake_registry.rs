//! A registry written for the tests: threads on 127.0.0.1 serving the
//! images of a [`Layout`] over just enough of the OCI distribution API for
//! ossify (`/v2/`, manifests by tag or digest, blobs), that misbehaves on
//! request: error statuses, resets, stalls, trickles, wrong bytes, bodies
//! longer than declared, a 4 GiB manifest, an endless one. Needs nothing
//! but Rust, so the tests that use it run in the fast tier.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ossify::image::Digest;
use serde_json::Value;

use super::Layout;

/// How a request is answered instead of normally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// This HTTP status, with an OCI error body.
    Status(u16),
    /// The headers and half the body, then a TCP reset.
    ResetMidway,
    /// The headers and half the body, then nothing, the connection open.
    Stall,
    /// The whole body, one byte every 100 ms.
    Trickle,
    /// The body with one byte changed.
    WrongBytes,
    /// The body and 1000 bytes more, chunked (no Content-Length to warn).
    Longer,
    /// `Content-Length: 4294967296`, then zeros for as long as the client reads.
    HugeLength,
    /// A chunked body of spaces that never ends.
    Endless,
}

struct Rule {
    /// The end of the request path: `manifests/1`, `blobs/sha256:…`.
    target: String,
    fault: Fault,
    /// How many more requests it applies to; `None`: all of them.
    remaining: Option<usize>,
}

struct Shared {
    layout: Layout,
    /// Tags served as another tag of the layout names.
    moved: Mutex<Vec<(String, String)>>,
    rules: Mutex<Vec<Rule>>,
    /// The path of every request, in order.
    requests: Mutex<Vec<String>>,
    /// Body bytes written by [`Fault::HugeLength`] and [`Fault::Endless`].
    flood: AtomicU64,
    stop: AtomicBool,
}

/// A fake registry; stops when dropped.
pub struct FakeRegistry {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    shared: Arc<Shared>,
}

impl FakeRegistry {
    /// Serves the images `layout` names (by tag: a name `1` in the
    /// layout's `index.json` is served as `ANY/REPO:1`).
    pub fn serve(layout: Layout) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let shared = Arc::new(Shared {
            layout,
            moved: Mutex::new(Vec::new()),
            rules: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
            flood: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let accepting = Arc::clone(&shared);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accepting.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let shared = Arc::clone(&accepting);
                std::thread::spawn(move || shared.answer(stream));
            }
        });
        Self { addr, shared }
    }

    /// Answers every request whose path ends with `target` with `fault`.
    pub fn fault(&self, target: &str, fault: Fault) {
        self.add_rule(target, fault, None);
    }

    /// Answers the next `times` requests for `target` with `fault`.
    pub fn fault_times(&self, target: &str, fault: Fault, times: usize) {
        self.add_rule(target, fault, Some(times));
    }

    fn add_rule(&self, target: &str, fault: Fault, remaining: Option<usize>) {
        self.shared.rules.lock().unwrap().push(Rule {
            target: target.to_owned(),
            fault,
            remaining,
        });
    }

    /// Serves `tag` as the image the layout names `to`, as a registry does
    /// after a push moved the tag.
    pub fn move_tag(&self, tag: &str, to: &str) {
        let mut moved = self.shared.moved.lock().unwrap();
        moved.push((tag.to_owned(), to.to_owned()));
    }

    /// Serves everything normally from now on.
    pub fn heal(&self) {
        self.shared.rules.lock().unwrap().clear();
    }

    /// How many requests asked for a path ending with `target`.
    pub fn requests(&self, target: &str) -> usize {
        let requests = self.shared.requests.lock().unwrap();
        requests.iter().filter(|p| p.ends_with(target)).count()
    }

    /// Body bytes sent by the flooding faults, whatever the client read.
    pub fn flooded(&self) -> u64 {
        self.shared.flood.load(Ordering::SeqCst)
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
    }
}

/// What a request asks for.
struct Content {
    bytes: Vec<u8>,
    media_type: String,
    digest: Digest,
}

impl Shared {
    fn answer(&self, mut stream: TcpStream) {
        let Some(path) = read_request(&mut stream) else {
            return;
        };
        let path = path.split('?').next().unwrap_or_default().to_owned();
        self.requests.lock().unwrap().push(path.clone());
        if path == "/v2/" || path == "/v2" {
            return respond(
                &mut stream,
                200,
                &[("Content-Type", "application/json")],
                b"{}",
            );
        }
        let fault = self.fault_for(&path);
        if let Some(Fault::Status(status)) = fault {
            return respond_error(
                &mut stream,
                status,
                "INJECTED",
                "fault injected by the test",
            );
        }
        let Some(content) = self.content(&path) else {
            let (code, message) = if path.contains("/manifests/") {
                ("MANIFEST_UNKNOWN", "manifest unknown")
            } else {
                ("BLOB_UNKNOWN", "blob unknown to registry")
            };
            return respond_error(&mut stream, 404, code, message);
        };
        let digest = content.digest.to_string();
        let headers = [
            ("Content-Type", content.media_type.as_str()),
            ("Docker-Content-Digest", digest.as_str()),
        ];
        let body = content.bytes;
        match fault {
            None => respond(&mut stream, 200, &headers, &body),
            Some(Fault::Status(_)) => unreachable!("answered above"),
            Some(Fault::WrongBytes) => {
                let mut wrong = body.clone();
                let middle = wrong.len() / 2;
                wrong[middle] ^= 0x01;
                respond(&mut stream, 200, &headers, &wrong);
            }
            Some(Fault::ResetMidway) => {
                write_head(&mut stream, 200, &headers, Some(body.len() as u64));
                let _ = stream.write_all(&body[..body.len() / 2]);
                let _ = stream.flush();
                std::thread::sleep(Duration::from_millis(50));
                reset(stream);
            }
            Some(Fault::Stall) => {
                write_head(&mut stream, 200, &headers, Some(body.len() as u64));
                let _ = stream.write_all(&body[..body.len() / 2]);
                let _ = stream.flush();
                while !self.stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            Some(Fault::Trickle) => {
                write_head(&mut stream, 200, &headers, Some(body.len() as u64));
                for byte in &body {
                    if self.stop.load(Ordering::SeqCst) || stream.write_all(&[*byte]).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            Some(Fault::Longer) => {
                write_head(&mut stream, 200, &headers, None);
                let mut longer = body.clone();
                longer.extend(std::iter::repeat_n(b' ', 1000));
                let _ = write_chunk(&mut stream, &longer);
                let _ = write_chunk(&mut stream, &[]);
            }
            Some(Fault::HugeLength) => {
                write_head(&mut stream, 200, &headers, Some(4 << 30));
                self.flood(&mut stream, |stream, block| stream.write_all(block));
            }
            Some(Fault::Endless) => {
                write_head(&mut stream, 200, &headers, None);
                self.flood(&mut stream, write_chunk);
            }
        }
    }

    /// Writes blocks of spaces until the client stops reading.
    fn flood(
        &self,
        stream: &mut TcpStream,
        write: impl Fn(&mut TcpStream, &[u8]) -> std::io::Result<()>,
    ) {
        let block = vec![b' '; 64 * 1024];
        while !self.stop.load(Ordering::SeqCst) && write(stream, &block).is_ok() {
            self.flood.fetch_add(block.len() as u64, Ordering::SeqCst);
        }
    }

    fn fault_for(&self, path: &str) -> Option<Fault> {
        let mut rules = self.rules.lock().unwrap();
        let rule = rules
            .iter_mut()
            .find(|r| path.ends_with(&r.target) && r.remaining != Some(0))?;
        if let Some(remaining) = rule.remaining.as_mut() {
            *remaining -= 1;
        }
        Some(rule.fault)
    }

    /// The manifest or blob `path` asks for, from the layout.
    fn content(&self, path: &str) -> Option<Content> {
        let (kind, reference) = path.rsplit_once('/')?;
        let digest = if reference.starts_with("sha256:") {
            reference.parse::<Digest>().ok()?
        } else if kind.ends_with("/manifests") {
            self.tagged(reference)?
        } else {
            return None;
        };
        let bytes =
            std::fs::read(self.layout.path().join("blobs/sha256").join(digest.hex())).ok()?;
        let media_type = if kind.ends_with("/manifests") {
            let document: Value = serde_json::from_slice(&bytes).ok()?;
            document["mediaType"].as_str()?.to_owned()
        } else {
            "application/octet-stream".to_owned()
        };
        Some(Content {
            bytes,
            media_type,
            digest,
        })
    }

    /// The digest the layout names `tag`, or the tag it was moved to.
    fn tagged(&self, tag: &str) -> Option<Digest> {
        let moved = self.moved.lock().unwrap();
        let tag = moved
            .iter()
            .find(|(from, _)| from == tag)
            .map_or(tag, |(_, to)| to.as_str());
        let index = std::fs::read(self.layout.path().join("index.json")).ok()?;
        let index: Value = serde_json::from_slice(&index).ok()?;
        let descriptor = index["manifests"].as_array()?.iter().find(|d| {
            d["annotations"]["org.opencontainers.image.ref.name"].as_str() == Some(tag)
        })?;
        descriptor["digest"].as_str()?.parse().ok()
    }
}

/// The request line's path, once the headers have been read.
fn read_request(stream: &mut TcpStream) -> Option<String> {
    let mut request = Vec::new();
    let mut byte = [0u8; 1];
    while !request.ends_with(b"\r\n\r\n") {
        if request.len() > 64 * 1024 || stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        request.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&request);
    let mut line = text.lines().next()?.split(' ');
    let _method = line.next()?;
    line.next().map(str::to_owned)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Injected",
    }
}

/// The status line and headers; `length` or, without one, chunked.
fn write_head(stream: &mut TcpStream, status: u16, headers: &[(&str, &str)], length: Option<u64>) {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nConnection: close\r\n",
        reason(status)
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    match length {
        Some(length) => head.push_str(&format!("Content-Length: {length}\r\n\r\n")),
        None => head.push_str("Transfer-Encoding: chunked\r\n\r\n"),
    }
    let _ = stream.write_all(head.as_bytes());
}

fn respond(stream: &mut TcpStream, status: u16, headers: &[(&str, &str)], body: &[u8]) {
    write_head(stream, status, headers, Some(body.len() as u64));
    let _ = stream.write_all(body);
}

fn respond_error(stream: &mut TcpStream, status: u16, code: &str, message: &str) {
    let body = serde_json::json!({"errors": [{"code": code, "message": message}]});
    respond(
        stream,
        status,
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
}

fn write_chunk(stream: &mut TcpStream, data: &[u8]) -> std::io::Result<()> {
    stream.write_all(format!("{:x}\r\n", data.len()).as_bytes())?;
    stream.write_all(data)?;
    stream.write_all(b"\r\n")
}

/// Closes the connection with a TCP reset (SO_LINGER of zero) rather than
/// an orderly end.
fn reset(stream: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the descriptor is open for the duration of the call and the
    // option value is a valid `linger` of the size passed.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(stream);
}
