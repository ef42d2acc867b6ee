//! Large files' contents deflated ahead of the initrd, found by content.
//!
//! The initrd's gzip is most of a build's work, and it cannot begin until
//! every layer is applied: the cpio follows the finished tree's path order.
//! But each large file's contents form a gzip segment of their own (see
//! [`crate::write::gzip`]), whose bytes depend on those contents alone. So
//! they are deflated as soon as a layer spills them, on worker threads,
//! while the layer thread goes on inflating; the initrd then splices each
//! file's segment in by the BLAKE3 digest of its contents, which the
//! workers took. A file without one (replaced by a later layer, or stored
//! after assembly) is deflated in place, to the same bytes. With a cache
//! to [reuse], segments are kept there, and a rebuild deflates only what
//! it has not seen.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tempfile::NamedTempFile;

use crate::reuse::{KeptSegments, Key, PackedSegment, Reuse};
use crate::tree::{Blob, BlobReader, SpillWatcher, Tree};
use crate::write::contents::Contents;
use crate::write::cpio::Sink;
use crate::write::gzip::{self, SegmentCheck};
use crate::write::initrd_compression::Compressor;

/// Files larger than this are gzip segments of their own; smaller ones,
/// with the cpio headers, share segments (and so each other's matches).
pub const SEPARATE: u64 = 16 * 1024;
/// Spilled files waiting for a worker; a full queue holds the layer
/// thread back, so the queue stays short whatever the root's size.
const QUEUE: usize = 64;
/// How many packs the cache may hold before [`DeflatedFiles::compact`]
/// merges them: a build keeps one per worker that deflated something.
const MAX_PACKS: usize = 16;

/// The digest of everything `contents` reads.
pub fn key(contents: impl Read) -> io::Result<Key> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(contents)?;
    Ok(*hasher.finalize().as_bytes())
}

/// Where a spilled file's contents lie: the file, by device and inode, and
/// the span. The files stay open until the build ends (see
/// [`Shared::files`]), so no other file can take the inode meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Place {
    device: u64,
    inode: u64,
    offset: u64,
    len: u64,
}

impl Place {
    fn of(file: &File, offset: u64, len: u64) -> io::Result<Place> {
        let metadata = file.metadata()?;
        Ok(Place {
            device: metadata.dev(),
            inode: metadata.ino(),
            offset,
            len,
        })
    }
}

/// What the workers share.
#[derive(Debug)]
struct Shared {
    kept: KeptSegments,
    /// The contents a worker has taken on, so that no other does them too.
    claimed: Mutex<HashSet<Key>>,
    /// The digest of the contents at each place a worker read.
    places: Mutex<HashMap<Place, Key>>,
    /// The files those places are in, held open; see [`Place`].
    files: Mutex<HashMap<(u64, u64), File>>,
}

/// Where one worker appends the segments it deflates: a pack for the
/// cache, else an unlinked temporary file.
#[derive(Debug)]
struct Pack {
    file: File,
    keep: Option<NamedTempFile>,
    entries: Vec<(Key, PackedSegment)>,
    end: u64,
}

impl Pack {
    fn new(reuse: Option<&Reuse>) -> io::Result<Pack> {
        let keep = reuse.and_then(|reuse| reuse.new_pack().ok());
        let file = match &keep {
            Some(pack) => pack.as_file().try_clone()?,
            None => tempfile::tempfile()?,
        };
        Ok(Pack {
            file,
            keep,
            entries: Vec::new(),
            end: 0,
        })
    }

    /// Deflates `len` bytes of `contents` onto the end of the pack. After
    /// a failure, nothing names the bytes written: the next segment goes
    /// over them.
    fn add(&mut self, key: Key, contents: impl Read, len: u64) -> io::Result<()> {
        let mut out = PackWriter {
            file: &self.file,
            offset: self.end,
            hasher: blake3::Hasher::new(),
        };
        let check = gzip::deflate_segment(contents, len, &mut out)?;
        let segment = PackedSegment {
            offset: self.end,
            len: out.offset - self.end,
            check,
            digest: *out.hasher.finalize().as_bytes(),
        };
        self.end = out.offset;
        self.entries.push((key, segment));
        Ok(())
    }
}

/// Writes a segment into a pack from `offset` on, taking its digest.
struct PackWriter<'a> {
    file: &'a File,
    offset: u64,
    hasher: blake3::Hasher,
}

impl Write for PackWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write_all_at(buf, self.offset)?;
        self.hasher.update(buf);
        self.offset += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Deflates spilled files on worker threads while assembly runs; see the
/// module docs. [`DeflateAhead::watcher`] feeds it, [`DeflateAhead::finish`]
/// waits for it.
pub struct DeflateAhead {
    queue: SyncSender<Job>,
    workers: Vec<JoinHandle<Pack>>,
    shared: Arc<Shared>,
    /// Where this build's segments are kept.
    reuse: Option<Reuse>,
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
        let shared = Arc::new(Shared {
            kept: reuse.as_ref().map(Reuse::segments).unwrap_or_default(),
            claimed: Mutex::default(),
            places: Mutex::default(),
            files: Mutex::default(),
        });
        let (queue, jobs) = std::sync::mpsc::sync_channel(QUEUE);
        let jobs = Arc::new(Mutex::new(jobs));
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let workers = (0..threads)
            .map(|_| {
                let pack = Pack::new(reuse.as_ref())?;
                let jobs = Arc::clone(&jobs);
                let shared = Arc::clone(&shared);
                Ok(std::thread::spawn(move || work(&jobs, &shared, pack)))
            })
            .collect::<io::Result<_>>()?;
        Ok(DeflateAhead {
            queue,
            workers,
            shared,
            reuse,
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
        let mut deflated = DeflatedFiles::default();
        let mut kept_packs = Vec::new();
        for worker in self.workers {
            // A panicking worker loses only its files, deflated in place.
            let Ok(pack) = worker.join() else { continue };
            if pack.entries.is_empty() {
                continue;
            }
            let number = deflated.packs.len() as u32;
            for (key, segment) in &pack.entries {
                deflated.index.insert(*key, (number, *segment));
            }
            if let (Some(reuse), Some(kept)) = (&self.reuse, pack.keep) {
                // Keeping only saves the next build time.
                if let Ok(path) = reuse.keep_pack(kept, &pack.entries) {
                    kept_packs.push(path);
                }
            }
            deflated.packs.push(pack.file);
        }
        deflated.reuse = self.reuse.map(|reuse| (reuse, kept_packs));
        let shared = Arc::into_inner(self.shared).expect("the workers are gone");
        deflated.places = shared.places.into_inner().expect("no worker panics");
        deflated._files = shared.files.into_inner().expect("no worker panics");
        deflated.kept = shared.kept;
        deflated
    }
}

/// Sends the large files a tree spills to the workers.
struct Watcher(SyncSender<Job>);

impl SpillWatcher for Watcher {
    fn spilled(&mut self, file: &File, offset: u64, len: u64) {
        if len <= SEPARATE {
            return;
        }
        // Deflating ahead only saves time: without a handle, or once the
        // workers are gone, the file is deflated in place.
        if let Ok(file) = file.try_clone() {
            let _ = self.0.send(Job::Spilled { file, offset, len });
        }
    }
}

/// A worker: deflates spilled files into `pack` until told to stop, and
/// returns it. Contents seen before are skipped; a file that cannot be
/// read is left to the initrd.
fn work(jobs: &Mutex<Receiver<Job>>, shared: &Shared, mut pack: Pack) -> Pack {
    loop {
        let next = jobs.lock().expect("no worker panics").recv();
        let Ok(Job::Spilled { file, offset, len }) = next else {
            return pack;
        };
        let reader = || BlobReader::Spilled {
            file: &file,
            position: offset,
            end: offset + len,
        };
        let (Ok(place), Ok(key)) = (Place::of(&file, offset, len), key(reader())) else {
            continue;
        };
        shared
            .places
            .lock()
            .expect("no worker panics")
            .insert(place, key);
        let fresh = !shared.kept.contains(&key)
            && shared.claimed.lock().expect("no worker panics").insert(key);
        if fresh {
            let _ = pack.add(key, reader(), len);
        }
        shared
            .files
            .lock()
            .expect("no worker panics")
            .entry((place.device, place.inode))
            .or_insert(file);
    }
}

/// The files deflated ahead, by the digest of their contents.
#[derive(Debug, Default)]
pub struct DeflatedFiles {
    /// This build's segments: the packs, and where each segment lies.
    packs: Vec<File>,
    index: HashMap<Key, (u32, PackedSegment)>,
    kept: KeptSegments,
    /// Where segments are kept, and the packs this build kept there.
    reuse: Option<(Reuse, Vec<PathBuf>)>,
    /// The segments the initrd took: what [`DeflatedFiles::compact`] keeps.
    used: Mutex<HashSet<Key>>,
    places: HashMap<Place, Key>,
    /// Held open, never read, for `places`; see [`Place`].
    _files: HashMap<(u64, u64), File>,
}

impl DeflatedFiles {
    /// The deflated segment of `blob`'s contents, if they were deflated
    /// ahead, in this build or kept from another: its check and its bytes.
    fn get(&self, tree: &Tree, blob: &Blob) -> io::Result<Option<(SegmentCheck, Contents<'_>)>> {
        let known = match tree.contents(blob) {
            BlobReader::Spilled {
                file,
                position,
                end,
            } => {
                let place = Place::of(file, position, end - position)?;
                self.places.get(&place).copied()
            }
            BlobReader::Memory(_) => None,
        };
        let key = match known {
            Some(key) => key,
            None => key(tree.contents(blob))?,
        };
        let found = self.segment(&key);
        if found.is_some() {
            self.used.lock().expect("no reader panics").insert(key);
        }
        Ok(found)
    }

    /// The segment of the contents whose digest is `key`, made in this
    /// build or kept from another.
    fn segment(&self, key: &Key) -> Option<(SegmentCheck, Contents<'_>)> {
        if let Some((pack, segment)) = self.index.get(key) {
            let contents = Contents::File {
                file: &self.packs[*pack as usize],
                offset: segment.offset,
                len: segment.len,
            };
            return Some((segment.check, contents));
        }
        self.kept.get(key)
    }

    /// Once the cache holds more than [`MAX_PACKS`] packs, replaces them
    /// with one pack of the segments this build used. So the packs of
    /// a long series of rebuilds stay few, each build loading every index,
    /// and hold what the latest needs. Call it after the initrd is
    /// written, under the cache's lock.
    pub fn compact(self) -> io::Result<()> {
        let Some((reuse, made)) = &self.reuse else {
            return Ok(());
        };
        if self.kept.pack_paths().count() + made.len() <= MAX_PACKS {
            return Ok(());
        }
        let mut used: Vec<Key> = std::mem::take(&mut *self.used.lock().expect("no reader panics"))
            .into_iter()
            .collect();
        used.sort_unstable();
        let pack = reuse.new_pack()?;
        let mut entries = Vec::with_capacity(used.len());
        let mut end = 0;
        for key in used {
            let Some((check, contents)) = self.segment(&key) else {
                continue;
            };
            let mut out = PackWriter {
                file: pack.as_file(),
                offset: end,
                hasher: blake3::Hasher::new(),
            };
            io::copy(&mut contents.reader(), &mut out)?;
            entries.push((
                key,
                PackedSegment {
                    offset: end,
                    len: contents.len(),
                    check,
                    digest: *out.hasher.finalize().as_bytes(),
                },
            ));
            end = out.offset;
        }
        let kept = reuse.keep_pack(pack, &entries)?;
        for old in self.kept.pack_paths().chain(made) {
            if *old != kept {
                crate::reuse::remove_pack(old);
            }
        }
        Ok(())
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
            Some(ahead) => ahead.get(tree, blob)?,
            None => None,
        };
        match deflated {
            Some((check, segment)) => encoder.splice(check, segment.reader()),
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
        add(&mut tree, "huge", &sample(9 << 20, 6));
        let deflated = ahead.finish();
        // One segment per distinct large content, the replaced one too;
        // the small file has none. Every large file's place is known.
        assert_eq!(deflated.index.len(), 5);
        assert_eq!(deflated.places.len(), 6);
        let with_ahead = initrd(&tree, Some(&deflated));
        assert_eq!(with_ahead, initrd(&tree, None));

        let mut cpio = Vec::new();
        flate2::read::GzDecoder::new(&with_ahead[..])
            .read_to_end(&mut cpio)
            .unwrap();
        assert!(cpio == crate::write::cpio::write(&tree, Vec::new(), 0).unwrap());
    }

    #[test]
    fn compacting_keeps_few_packs_and_what_the_last_build_used() {
        let cache = tempfile::tempdir().unwrap();
        let reuse = Reuse::open(cache.path()).unwrap();
        let packs = || {
            let dir = cache.path().join(crate::reuse::DIR).join("gzip");
            let names = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path());
            names.filter(|p| p.extension().unwrap() == "pack").count()
        };
        // A build of three large files, one the same in every build; it
        // returns the initrd and how many segments it deflated.
        let build = |seed: u32| {
            let ahead = DeflateAhead::start(Some(reuse.clone())).unwrap();
            let mut tree = Tree::new(0);
            tree.watch_spills(ahead.watcher());
            add(&mut tree, "shared", &sample(100_000, 1));
            add(&mut tree, "own", &sample(100_000, seed));
            add(&mut tree, "other", &sample(100_000, seed + 1000));
            let deflated = ahead.finish();
            let made = deflated.index.len();
            let bytes = initrd(&tree, Some(&deflated));
            assert_eq!(bytes, initrd(&tree, None), "build {seed}");
            deflated.compact().unwrap();
            (bytes, made)
        };
        let mut fewest = usize::MAX;
        for seed in 2..(MAX_PACKS as u32 + 4) {
            let (_, made) = build(seed);
            assert_eq!(made, if seed == 2 { 3 } else { 2 }, "build {seed}");
            assert!(packs() <= MAX_PACKS, "{} packs after build {seed}", packs());
            fewest = fewest.min(packs());
        }
        // Merged at least once, into a single pack.
        assert_eq!(fewest, 1);
        let last = MAX_PACKS as u32 + 3;
        assert_eq!(build(last).1, 0, "the last build's segments are kept");
        // A file only the first builds had is deflated again; the shared
        // one is still kept.
        assert_eq!(build(2).1, 2);
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
