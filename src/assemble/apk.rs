//! apk's database of installed packages, `lib/apk/db/installed`, which
//! several init images each bring. Placing them one over another would
//! keep only the last image's packages, so scanners reading the root would
//! see fewer packages than it holds; LinuxKit (moby/apk_tarwriter.go)
//! writes the union instead, and so does ossify, byte for byte: every
//! database in init order, each followed by a blank line.

use std::io::Read;

use super::Failure;
use crate::tree::{Kind, Metadata, Tree};

/// Where apk keeps its database, relative to the root.
pub const INSTALLED: &str = "lib/apk/db/installed";

/// The largest database read; Alpine's biggest images list a few
/// thousand packages in a few MiB.
const MAX_DATABASE_SIZE: u64 = 64 << 20;

/// The databases of the init images, in init order.
#[derive(Debug, Default)]
pub struct InstalledDatabases(Vec<Vec<u8>>);

impl InstalledDatabases {
    /// Keeps `image`'s database, if it has one as a regular file.
    pub fn collect(&mut self, image: &Tree) -> Result<(), Failure> {
        let Some(id) = image.lookup(INSTALLED) else {
            return Ok(());
        };
        let Kind::File(blob) = &image.node(id).kind else {
            return Ok(());
        };
        if blob.len() > MAX_DATABASE_SIZE {
            return Err(Failure::Invalid(format!(
                "{INSTALLED} is {} bytes, more than the {MAX_DATABASE_SIZE} an apk database may be",
                blob.len()
            )));
        }
        let mut database = Vec::new();
        image
            .contents(blob)
            .read_to_end(&mut database)
            .map_err(Failure::Storage)?;
        self.0.push(database);
        Ok(())
    }

    /// Writes the union into `root` when more than one image had a
    /// database; with one, the image's own file is already in place.
    pub fn write_union(self, root: &mut Tree, mtime: u64) -> Result<(), Failure> {
        if self.0.len() < 2 {
            return Ok(());
        }
        let union: Vec<u8> = self
            .0
            .iter()
            .flat_map(|database| database.iter().chain(b"\n\n"))
            .copied()
            .collect();
        let blob = root.store_bytes(&union).map_err(Failure::Storage)?;
        root.insert(INSTALLED, Kind::File(blob), Metadata::new(0o644, mtime))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(database: Option<&[u8]>) -> Tree {
        let mut tree = Tree::new(0);
        if let Some(database) = database {
            let blob = tree.store_bytes(database).unwrap();
            tree.insert(INSTALLED, Kind::File(blob), Metadata::new(0o600, 7))
                .unwrap();
        }
        tree
    }

    fn installed(root: &Tree) -> Option<(Vec<u8>, Metadata)> {
        let node = root.node(root.lookup(INSTALLED)?);
        let Kind::File(blob) = &node.kind else {
            panic!("not a file")
        };
        let mut bytes = Vec::new();
        root.contents(blob).read_to_end(&mut bytes).unwrap();
        Some((bytes, node.metadata.clone()))
    }

    #[test]
    fn two_databases_become_their_union_in_init_order() {
        let mut databases = InstalledDatabases::default();
        for database in [
            Some(&b"P:musl\nV:1.2\n"[..]),
            None,
            Some(b"P:busybox\nV:1.36\n"),
        ] {
            databases.collect(&image(database)).unwrap();
        }
        let mut root = image(Some(b"P:busybox\nV:1.36\n"));
        databases.write_union(&mut root, 1234).unwrap();
        let (bytes, metadata) = installed(&root).unwrap();
        assert_eq!(bytes, b"P:musl\nV:1.2\n\n\nP:busybox\nV:1.36\n\n\n");
        assert_eq!((metadata.mode, metadata.uid, metadata.gid), (0o644, 0, 0));
        assert_eq!(metadata.mtime, 1234);
    }

    #[test]
    fn one_database_stays_as_the_image_wrote_it() {
        let mut databases = InstalledDatabases::default();
        databases.collect(&image(Some(b"P:musl\n"))).unwrap();
        let mut root = image(Some(b"P:musl\n"));
        databases.write_union(&mut root, 1234).unwrap();
        let (bytes, metadata) = installed(&root).unwrap();
        assert_eq!(bytes, b"P:musl\n");
        assert_eq!(metadata.mode, 0o600);
    }
}
