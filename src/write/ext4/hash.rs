//! The directory-index name hash: half MD4 over the name in 32-byte
//! pieces, seeded with the superblock's hash seed, bytes taken unsigned
//! (the superblock says so).

/// MD4's initial state, used when the seed is all zero.
const DEFAULT_SEED: [u32; 4] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476];
/// The hash that marks the end of a directory; names never hash to it.
const EOF_HASH: u32 = 0x7FFF_FFFF << 1;

/// The (major, minor) hash of `name` under `seed`; the major hash's low
/// bit is always clear (it marks collisions in index entries).
pub fn name_hash(name: &[u8], seed: &[u32; 4]) -> (u32, u32) {
    let mut state = if seed.iter().all(|&word| word == 0) {
        DEFAULT_SEED
    } else {
        *seed
    };
    let mut rest = name;
    loop {
        transform(&mut state, &words(rest));
        if rest.len() <= 32 {
            break;
        }
        rest = &rest[32..];
    }
    let mut major = state[1] & !1;
    if major == EOF_HASH {
        major = (0x7FFF_FFFF - 1) << 1;
    }
    (major, state[2])
}

/// Eight words from the first 32 of the `bytes` left of a name, padded
/// with a pattern of how many are left, as ext4's `str2hashbuf` does.
fn words(bytes: &[u8]) -> [u32; 8] {
    let len = bytes.len() as u32;
    let mut pad = len | (len << 8);
    pad |= pad << 16;
    let mut words = [pad; 8];
    let take = bytes.len().min(32);
    let mut value = pad;
    for (i, &byte) in bytes[..take].iter().enumerate() {
        value = u32::from(byte).wrapping_add(value << 8);
        if i % 4 == 3 {
            words[i / 4] = value;
            value = pad;
        }
    }
    if !take.is_multiple_of(4) {
        words[take / 4] = value;
    }
    words
}

/// One half-MD4 round over `input`, added into `state`.
fn transform(state: &mut [u32; 4], input: &[u32; 8]) {
    const K2: u32 = 0o13240474631;
    const K3: u32 = 0o15666365641;
    let f = |x: u32, y: u32, z: u32| z ^ (x & (y ^ z));
    let g = |x: u32, y: u32, z: u32| (x & y).wrapping_add((x ^ y) & z);
    let h = |x: u32, y: u32, z: u32| x ^ y ^ z;
    type Mix = dyn Fn(u32, u32, u32) -> u32;
    let [mut a, mut b, mut c, mut d] = *state;
    let step = |a: u32, b: u32, c: u32, d: u32, func: &Mix, x: u32, s: u32| {
        a.wrapping_add(func(b, c, d)).wrapping_add(x).rotate_left(s)
    };
    // Each round: its function, constant, word order and shifts.
    let rounds: [(&Mix, u32, [usize; 8], [u32; 4]); 3] = [
        (&f, 0, [0, 1, 2, 3, 4, 5, 6, 7], [3, 7, 11, 19]),
        (&g, K2, [1, 3, 5, 7, 0, 2, 4, 6], [3, 5, 9, 13]),
        (&h, K3, [3, 7, 2, 6, 1, 5, 0, 4], [3, 9, 11, 15]),
    ];
    for (func, k, order, shifts) in rounds {
        for pair in 0..2 {
            let x = |i: usize| input[order[pair * 4 + i]].wrapping_add(k);
            a = step(a, b, c, d, func, x(0), shifts[0]);
            d = step(d, a, b, c, func, x(1), shifts[1]);
            c = step(c, d, a, b, func, x(2), shifts[2]);
            b = step(b, c, d, a, func, x(3), shifts[3]);
        }
    }
    state[0] = state[0].wrapping_add(a);
    state[1] = state[1].wrapping_add(b);
    state[2] = state[2].wrapping_add(c);
    state[3] = state[3].wrapping_add(d);
}

#[cfg(test)]
mod tests {
    use super::name_hash;

    /// Values from e2fsprogs' `debugfs -R 'dx_hash -h half_md4 …'`.
    #[test]
    fn matches_e2fsprogs() {
        assert_eq!(name_hash(b"hello", &[0; 4]), (0x1746_da32, 0x4200_13b5));
        let seed = [0x0403_0201, 0x0807_0605, 0x0c0b_0a09, 0x100f_0e0d];
        assert_eq!(name_hash(b"hello", &seed), (0xe2dd_f968, 0xc8bc_0924));
        assert_eq!(
            name_hash(b"a-name-longer-than-thirty-two-bytes-for-sure", &[0; 4]),
            (0x1c79_d05a, 0x3f05_5038)
        );
        assert_eq!(
            name_hash(b"file-00001", &[0; 4]),
            (0x84e6_dbde, 0xcb56_9be3)
        );
        assert_eq!(name_hash(b"x", &[0; 4]), (0x497e_f0fe, 0xec1a_e8f9));
    }
}
