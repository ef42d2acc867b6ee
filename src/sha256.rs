//! The sha256 of a long stream, taken on a thread of its own.
//!
//! A build hashes everything it reads and writes: each layer blob against
//! its digest, each uncompressed layer against its diff_id, each output
//! for the manifest. On the thread that inflates or writes, that is a
//! quarter of a tar build's time; on a thread beside it, it overlaps.
//! Short streams (manifests, configs) are hashed in place: a thread would
//! cost more than it saves.

use std::sync::mpsc::{Receiver, SyncSender};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

/// Streams up to this long are hashed on the caller's thread.
const IN_PLACE: u64 = 1 << 20;
/// How many bytes go to the hashing thread at once.
const PIECE: usize = 1 << 20;
/// Pieces on their way to the hashing thread: the memory a hasher holds,
/// and how far the caller may run ahead of it.
const IN_FLIGHT: usize = 4;

/// A sha256 being taken; see the module docs.
pub struct Sha256Stream {
    len: u64,
    state: State,
}

enum State {
    InPlace(Sha256),
    Beside(Beside),
}

/// The hashing thread and what goes to and from it.
struct Beside {
    /// Bytes gathered for the next piece.
    piece: Vec<u8>,
    pieces: SyncSender<Vec<u8>>,
    /// Pieces hashed, to be filled again rather than allocated.
    spent: Receiver<Vec<u8>>,
    thread: JoinHandle<Sha256>,
}

impl Default for Sha256Stream {
    fn default() -> Self {
        Sha256Stream::new()
    }
}

impl Sha256Stream {
    pub fn new() -> Sha256Stream {
        Sha256Stream {
            len: 0,
            state: State::InPlace(Sha256::new()),
        }
    }

    /// How many bytes were hashed.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn update(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len() as u64;
        if let State::InPlace(hasher) = &mut self.state {
            if self.len <= IN_PLACE {
                hasher.update(bytes);
                return;
            }
            let hasher = std::mem::take(hasher);
            self.state = State::Beside(Beside::start(hasher));
        }
        let State::Beside(beside) = &mut self.state else {
            unreachable!("a long stream is hashed beside")
        };
        while !bytes.is_empty() {
            let take = (PIECE - beside.piece.len()).min(bytes.len());
            beside.piece.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if beside.piece.len() == PIECE {
                beside.send();
            }
        }
    }

    /// The digest of every byte given.
    pub fn finalize(self) -> [u8; 32] {
        let hasher = match self.state {
            State::InPlace(hasher) => hasher,
            State::Beside(mut beside) => {
                beside.send();
                drop(beside.pieces);
                beside.thread.join().expect("hashing does not panic")
            }
        };
        hasher.finalize().into()
    }
}

impl Beside {
    fn start(mut hasher: Sha256) -> Beside {
        let (pieces, to_hash) = std::sync::mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT);
        let (give_back, spent) = std::sync::mpsc::sync_channel(IN_FLIGHT + 1);
        let thread = std::thread::spawn(move || {
            for mut piece in to_hash {
                hasher.update(&piece);
                piece.clear();
                // The caller may be gone, or have spares enough.
                let _ = give_back.try_send(piece);
            }
            hasher
        });
        Beside {
            piece: Vec::with_capacity(PIECE),
            pieces,
            spent,
            thread,
        }
    }

    /// Sends the piece gathered, and takes an empty one.
    fn send(&mut self) {
        let next = self
            .spent
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(PIECE));
        let piece = std::mem::replace(&mut self.piece, next);
        if !piece.is_empty() {
            self.pieces
                .send(piece)
                .expect("the hashing thread lives until finalize");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_sha256_in_place_and_beside_for_any_split() {
        let bytes: Vec<u8> = (0..5 * PIECE + 12_345)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        for len in [0, 1, IN_PLACE as usize, IN_PLACE as usize + 1, bytes.len()] {
            let input = &bytes[..len];
            let expected: [u8; 32] = Sha256::digest(input).into();
            for split in [7, 4096, 300_001, PIECE, PIECE + 1] {
                let mut stream = Sha256Stream::new();
                for chunk in input.chunks(split) {
                    stream.update(chunk);
                }
                assert_eq!(stream.len(), len as u64);
                assert_eq!(stream.finalize(), expected, "{len} bytes in {split}s");
            }
        }
    }
}
