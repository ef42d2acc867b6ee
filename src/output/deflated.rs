//! Large files' contents deflated ahead of the initrd, found by content.
//!
//! The initrd's gzip is most of a build's work, and it cannot begin until
//! every layer is applied: the cpio follows the finished tree's path order.
//! But each large file's contents form a gzip segment of their own (see
//! [`crate::write::gzip`]), whose bytes depend on those contents alone. So
//! they are deflated as soon as a layer spills them, on worker threads,
//! while the layer thread goes on inflating; the initrd then splices each
//! file's segment in by the BLAKE3 digest of its contents. A file without
//! one (replaced by a later layer, too large, or stored after assembly) is
//! deflated in place, to the same bytes. With a cache to [reuse], segments
//! are kept there, and a rebuild deflates only what it has not seen.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tempfile::NamedTempFile;

use crate::reuse::{KeptSegments, Key, PackedSegment, Reuse};
use crate::tree::{Blob, BlobReader, SpillWatcher, Tree};
use crate::write::cpio::Sink;
use crate::write::gzip::{self, SegmentCheck};
use crate::write::initrd_compression::Compressor;

/// Files larger than this are gzip segments of their own; smaller ones,
/// with the cpio headers, share segments (and so each other's matches).
pub const SEPARATE: u64 = 16 * 1024;
/// Larger files are deflated in place, where memory stays a few blocks:
/// a worker holds a file's whole deflated segment.
const AHEAD_MAX: u64 = 8 << 20;
/// Spilled files waiting for a worker; a full queue holds the layer
/// thread back, so the queue stays short whatever the root's size.
const QUEUE: usize = 64;

/// The digest of everything `contents` reads.
pub fn key(contents: impl Read) -> io::Result<Key> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(contents)?;
    Ok(*hasher.finalize().as_bytes())
}

/// What the workers share: the segments kept by earlier builds, and this
/// build's, appended to one file (a new pack for the cache, else an
/// unlinked temporary file), and where each lies.
#[derive(Debug)]
struct Segments {
    kept: KeptSegments,
    file: File,
    end: AtomicU64,
    index: Mutex<HashMap<Key, PackedSegment>>,
}

impl Segments {
    fn contains(&self, key: &Key) -> bool {
        self.kept.contains(key)
            || self
                .index
                .lock()
                .expect("no worker panics")
                .contains_key(key)
    }

    fn add(&self, key: Key, deflated: &[u8], check: SegmentCheck) -> io::Result<()> {
        let len = deflated.len() as u64;
        let offset = self.end.fetch_add(len, Ordering::Relaxed);
        self.file.write_all_at(deflated, offset)?;
        let segment = PackedSegment {
            offset,
            len,
            check,
            digest: *blake3::hash(deflated).as_bytes(),
        };
        self.index
            .lock()
            .expect("no worker panics")
            .insert(key, segment);
        Ok(())
    }
}

/// Deflates spilled files on worker threads while assembly runs; see the
/// module docs. [`DeflateAhead::watcher`] feeds it, [`DeflateAhead::finish`]
/// waits for it.
pub struct DeflateAhead {
    queue: SyncSender<Job>,
    workers: Vec<JoinHandle<()>>,
    segments: Arc<Segments>,
    /// Where this build's segments are kept, and the pack they go to.
    keep: Option<(Reuse, NamedTempFile)>,
}

/// What a worker is given.
enum Job {
    /// Deflate the file spilled here.
    Spilled { file: File, offset: u64, len: u64 },
    /// Stop: every file sent before has been taken.
    Stop,
}

impl DeflateAhead {
    /// Starts a worker per core. With `reuse`, segments kept by earlier
    /// builds are not made again, and this build's are kept there.
    pub fn start(reuse: Option<Reuse>) -> io::Result<DeflateAhead> {
        let kept = reuse.as_ref().map(Reuse::segments).unwrap_or_default();
        let keep = reuse.and_then(|reuse| Some((reuse.clone(), reuse.new_pack().ok()?)));
        let file = match &keep {
            Some((_, pack)) => pack.as_file().try_clone()?,
            None => tempfile::tempfile()?,
        };
        let segments = Arc::new(Segments {
            kept,
            file,
            end: AtomicU64::new(0),
            index: Mutex::new(HashMap::new()),
        });
        let (queue, jobs) = std::sync::mpsc::sync_channel(QUEUE);
        let jobs = Arc::new(Mutex::new(jobs));
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let workers = (0..threads)
            .map(|_| {
                let jobs = Arc::clone(&jobs);
                let segments = Arc::clone(&segments);
                std::thread::spawn(move || work(&jobs, &segments))
            })
            .collect();
        Ok(DeflateAhead {
            queue,
            workers,
            segments,
            keep,
        })
    }

    /// A watcher to give a tree (see [`crate::tree::Tree::watch_spills`]).
    pub fn watcher(&self) -> Box<dyn SpillWatcher> {
        Box::new(Watcher(self.queue.clone()))
    }

    /// Waits for the workers to deflate every spilled file they were given.
    /// Watchers still held (by a tree not yet dropped) send no more.
    pub fn finish(self) -> DeflatedFiles {
        for _ in &self.workers {
            let _ = self.queue.send(Job::Stop);
        }
        for worker in self.workers {
            // A panicking worker loses only its file, deflated in place.
            let _ = worker.join();
        }
        let segments = Arc::into_inner(self.segments).expect("the workers are gone");
        let index = segments.index.into_inner().expect("no worker panics");
        if let Some((reuse, pack)) = self.keep
            && !index.is_empty()
        {
            let mut entries: Vec<(Key, PackedSegment)> = index
                .iter()
                .map(|(key, segment)| (*key, *segment))
                .collect();
            entries.sort_by_key(|(_, segment)| segment.offset);
            // Keeping only saves the next build time.
            let _ = reuse.keep_pack(pack, &entries);
        }
        DeflatedFiles {
            index,
            file: segments.file,
            kept: segments.kept,
        }
    }
}

/// Sends the large files a tree spills to the workers.
struct Watcher(SyncSender<Job>);

impl SpillWatcher for Watcher {
    fn spilled(&mut self, file: &File, offset: u64, len: u64) {
        if !(SEPARATE + 1..=AHEAD_MAX).contains(&len) {
            return;
        }
        // Deflating ahead only saves time: without a handle, or once the
        // workers are gone, the file is deflated in place.
        if let Ok(file) = file.try_clone() {
            let _ = self.0.send(Job::Spilled { file, offset, len });
        }
    }
}

/// A worker: deflates spilled files until told to stop. Contents seen
/// before are skipped; a file that cannot be read is left to the initrd.
fn work(jobs: &Mutex<Receiver<Job>>, segments: &Segments) {
    loop {
        let next = jobs.lock().expect("no worker panics").recv();
        let Ok(Job::Spilled { file, offset, len }) = next else {
            return;
        };
        let reader = || BlobReader::Spilled {
            file: &file,
            position: offset,
            end: offset + len,
        };
        let Ok(key) = key(reader()) else { continue };
        if segments.contains(&key) {
            continue;
        }
        if let Ok((deflated, check)) = gzip::deflate_segment(reader(), len) {
            let _ = segments.add(key, &deflated, check);
        }
    }
}

/// The files deflated ahead, by the digest of their contents.
#[derive(Debug)]
pub struct DeflatedFiles {
    index: HashMap<Key, PackedSegment>,
    file: File,
    kept: KeptSegments,
}

impl DeflatedFiles {
    /// The deflated segment of the contents whose digest is `key`, if they
    /// were deflated ahead, in this build or kept from another: its check
    /// and a reader of its bytes.
    pub fn get(&self, key: &Key) -> Option<(SegmentCheck, Box<dyn Read + '_>)> {
        if let Some(segment) = self.index.get(key) {
            let reader = BlobReader::Spilled {
                file: &self.file,
                position: segment.offset,
                end: segment.offset + segment.len,
            };
            return Some((segment.check, Box::new(reader)));
        }
        let (check, deflated) = self.kept.get(key)?;
        Some((check, Box::new(io::Cursor::new(deflated))))
    }
}

/// An initrd's compressor as a cpio sink. With gzip, the contents of each
/// file larger than [`SEPARATE`] are a segment of their own, spliced in
/// from `ahead` when they were deflated there: the bytes are the same
/// whether they were or not.
pub struct InitrdSink<'a, W: Write> {
    pub compressor: Compressor<W>,
    pub ahead: Option<&'a DeflatedFiles>,
}

impl<W: Write> Write for InitrdSink<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.compressor.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.compressor.flush()
    }
}

impl<W: Write> Sink for InitrdSink<'_, W> {
    fn takes_contents(&self, len: u64) -> bool {
        matches!(self.compressor, Compressor::Gzip(_)) && len > SEPARATE
    }

    fn contents(&mut self, tree: &Tree, blob: &Blob) -> io::Result<()> {
        let Compressor::Gzip(encoder) = &mut self.compressor else {
            return tree.contents(blob).copy_to(&mut self.compressor).map(drop);
        };
        let deflated = match self.ahead {
            Some(ahead) => ahead.get(&key(tree.contents(blob))?),
            None => None,
        };
        match deflated {
            Some((check, segment)) => encoder.splice(check, segment),
            None => {
                encoder.end_segment()?;
                tree.contents(blob).copy_to(encoder)?;
                encoder.end_segment()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{Kind, Metadata};
    use crate::write::gzip::tests::sample;
    use crate::write::initrd_compression::InitrdCompression;

    fn add(tree: &mut Tree, path: &str, contents: &[u8]) {
        let blob = tree.store_bytes(contents).unwrap();
        tree.insert(path, Kind::File(blob), Metadata::new(0o644, 0))
            .unwrap();
    }

    fn initrd(tree: &Tree, ahead: Option<&DeflatedFiles>) -> Vec<u8> {
        let sink = InitrdSink {
            compressor: InitrdCompression::Gzip.compressor(Vec::new()).unwrap(),
            ahead,
        };
        let sink = crate::write::cpio::write_to_sink(tree, sink, 0).unwrap();
        sink.compressor.finish().unwrap()
    }

    #[test]
    fn files_deflated_ahead_make_the_same_initrd_as_files_deflated_in_place() {
        let ahead = DeflateAhead::start(None).unwrap();
        let mut tree = Tree::new(0);
        tree.watch_spills(ahead.watcher());
        add(&mut tree, "small", &sample(SEPARATE as usize, 1));
        add(&mut tree, "large", &sample(300_000, 2));
        add(&mut tree, "copy", &sample(300_000, 2));
        add(&mut tree, "blocks", &sample(2 << 20, 3));
        add(&mut tree, "replaced", &sample(50_000, 4));
        add(&mut tree, "replaced", &sample(60_000, 5));
        add(&mut tree, "huge", &sample(AHEAD_MAX as usize + 1, 6));
        let deflated = ahead.finish();
        // One segment per distinct large content, the replaced one too;
        // the small file and the one too large for ahead have none.
        assert_eq!(deflated.index.len(), 4);
        let with_ahead = initrd(&tree, Some(&deflated));
        assert_eq!(with_ahead, initrd(&tree, None));

        let mut cpio = Vec::new();
        flate2::read::GzDecoder::new(&with_ahead[..])
            .read_to_end(&mut cpio)
            .unwrap();
        assert!(cpio == crate::write::cpio::write(&tree, Vec::new(), 0).unwrap());
    }

    #[test]
    fn other_compressions_take_no_segments() {
        for compression in [InitrdCompression::Zstd, InitrdCompression::None] {
            let sink = InitrdSink {
                compressor: compression.compressor(Vec::new()).unwrap(),
                ahead: None,
            };
            assert!(!sink.takes_contents(SEPARATE + 1), "{compression}");
        }
        let sink = InitrdSink {
            compressor: InitrdCompression::Gzip.compressor(Vec::new()).unwrap(),
            ahead: None,
        };
        assert!(sink.takes_contents(SEPARATE + 1));
        assert!(!sink.takes_contents(SEPARATE));
    }
}
