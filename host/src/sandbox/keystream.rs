//! A ChaCha20 keystream read byte by byte: the generator behind every
//! random value an orchestration sees. Its output is fixed by the cipher's
//! specification (the original 64-bit nonce construction: a 256-bit key, a
//! 64-bit stream id, a 64-bit block counter from 0), whatever lengths the
//! reads have.

use chacha20::ChaCha20Rng;
use chacha20::rand_core::{Rng, SeedableRng};

/// One ChaCha20 keystream, read in order.
pub(crate) struct Keystream {
    rng: ChaCha20Rng,
    /// Bytes of the last 32-bit word read that no read has used yet; the
    /// generator itself would drop them (`rand_core`'s block rule), which
    /// would make a read depend on the lengths of the reads before it.
    spare: [u8; 4],
    spare_len: usize,
}

impl Keystream {
    /// Stream `stream` of the keystream keyed by `key`, from its start.
    pub(crate) fn new(key: [u8; 32], stream: u64) -> Self {
        let mut rng = ChaCha20Rng::from_seed(key);
        rng.set_stream(stream);
        Keystream {
            rng,
            spare: [0; 4],
            spare_len: 0,
        }
    }

    /// Fill `out` with the next `out.len()` bytes of the keystream.
    pub(crate) fn fill(&mut self, out: &mut [u8]) {
        let from_spare = self.spare_len.min(out.len());
        let start = self.spare.len() - self.spare_len;
        out[..from_spare].copy_from_slice(&self.spare[start..start + from_spare]);
        self.spare_len -= from_spare;
        let rest = &mut out[from_spare..];
        // Whole words: the generator hands them out as the keystream's bytes.
        let whole = rest.len() / 4 * 4;
        let (words, tail) = rest.split_at_mut(whole);
        self.rng.fill_bytes(words);
        if !tail.is_empty() {
            let word = self.rng.next_u32().to_le_bytes();
            tail.copy_from_slice(&word[..tail.len()]);
            self.spare = word;
            self.spare_len = word.len() - tail.len();
        }
    }

    /// The next 8 bytes of the keystream, as a little-endian number.
    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut bytes = [0u8; 8];
        self.fill(&mut bytes);
        u64::from_le_bytes(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn the_keystream_is_chacha20s() {
        // The first 64 bytes of ChaCha20 with the all-zero key and nonce,
        // the cipher's best-known test vector.
        let mut stream = Keystream::new([0; 32], 0);
        let mut block = [0u8; 64];
        stream.fill(&mut block);
        assert_eq!(
            hex(&block),
            "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7\
             da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586"
        );
    }

    #[test]
    fn reads_of_any_lengths_follow_each_other() {
        let mut whole = [0u8; 70];
        Keystream::new([3; 32], 9).fill(&mut whole);
        let mut stream = Keystream::new([3; 32], 9);
        let mut at = 0;
        for len in [1, 2, 5, 0, 3, 8, 13, 4, 1, 33] {
            let mut part = vec![0u8; len];
            stream.fill(&mut part);
            assert_eq!(part, whole[at..at + len], "read of {len} at {at}");
            at += len;
        }
    }

    #[test]
    fn streams_of_one_key_differ() {
        let (mut a, mut b) = (Keystream::new([3; 32], 1), Keystream::new([3; 32], 2));
        assert_ne!(a.next_u64(), b.next_u64());
    }
}
