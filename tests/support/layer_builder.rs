//! Layer tars with every kind of entry: owners, modes, links, devices.

/// A tar layer built entry by entry.
pub struct LayerBuilder(tar::Builder<Vec<u8>>);

impl LayerBuilder {
    pub fn new() -> Self {
        LayerBuilder(tar::Builder::new(Vec::new()))
    }

    fn header(kind: tar::EntryType, mode: u32, owner: (u64, u64), size: u64) -> tar::Header {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(owner.0);
        header.set_gid(owner.1);
        header.set_mtime(1_000_000_000);
        header.set_size(size);
        header
    }

    pub fn dir(mut self, path: &str, mode: u32) -> Self {
        let mut header = Self::header(tar::EntryType::Directory, mode, (0, 0), 0);
        self.0.append_data(&mut header, path, &[][..]).unwrap();
        self
    }

    pub fn file(self, path: &str, contents: &[u8], mode: u32) -> Self {
        self.owned_file(path, contents, mode, (0, 0))
    }

    pub fn owned_file(mut self, path: &str, contents: &[u8], mode: u32, owner: (u64, u64)) -> Self {
        let mut header = Self::header(tar::EntryType::Regular, mode, owner, contents.len() as u64);
        self.0.append_data(&mut header, path, contents).unwrap();
        self
    }

    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        let mut header = Self::header(tar::EntryType::Symlink, 0o777, (0, 0), 0);
        self.0.append_link(&mut header, path, target).unwrap();
        self
    }

    pub fn hard_link(mut self, path: &str, target: &str) -> Self {
        let mut header = Self::header(tar::EntryType::Link, 0o755, (0, 0), 0);
        self.0.append_link(&mut header, path, target).unwrap();
        self
    }

    pub fn char_device(mut self, path: &str, major: u32, minor: u32) -> Self {
        let mut header = Self::header(tar::EntryType::Char, 0o666, (0, 0), 0);
        header.set_device_major(major).unwrap();
        header.set_device_minor(minor).unwrap();
        self.0.append_data(&mut header, path, &[][..]).unwrap();
        self
    }

    pub fn finish(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}
