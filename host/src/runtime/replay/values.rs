//! The deterministic values a guest sees: the turn clock, guids, random
//! numbers, and the generators of its WASI randomness. Each is the same on
//! every replay of the execution, and each is fixed by a specification, not
//! by a library's version:
//!
//! - the execution's seed is the SHA-256 digest of [`SEED_TAG`], the
//!   instance id and the execution id (8 bytes, little-endian);
//! - every value is drawn from a ChaCha20 keystream keyed by the seed, one
//!   stream id per kind of value ([`Stream`]), starting at block 0;
//! - `random_u64` is the next 8 bytes of its stream, little-endian;
//! - `new_guid` is a version 4 UUID (RFC 9562) made of the next 16 bytes of
//!   its stream, with the version and variant bits set;
//! - WASI's `random` and `insecure` read their own streams, byte after
//!   byte, whatever lengths the guest asks for (numbers are 8 bytes,
//!   little-endian); `insecure-seed` is the first 16 bytes of its stream,
//!   little-endian.
//!
//! The golden-value tests below pin the first values (computed apart from
//! this code, from the ChaCha20 block function): a dependency update that
//! changed them would make recorded histories diverge.

use sha2::{Digest, Sha256};

use crate::sandbox::{Keystream, SeededRandom, TurnClock};

/// Prefix of the hashed seed material; a new derivation gets a new tag.
const SEED_TAG: &[u8] = b"duroxide execution seed v1\0";

/// The ChaCha20 stream (nonce) each kind of value is drawn from. Separate
/// streams keep each sequence independent of how the guest interleaves its
/// calls: the third guid is the same whether or not random numbers were
/// drawn between.
#[derive(Clone, Copy)]
enum Stream {
    /// `random_u64` of the context.
    Random = 0,
    /// `new_guid` of the context.
    Guid = 1,
    /// `wasi:random/random`.
    WasiSecure = 2,
    /// `wasi:random/insecure`.
    WasiInsecure = 3,
    /// `wasi:random/insecure-seed`: its first 16 bytes, little-endian.
    WasiInsecureSeed = 4,
}

/// The clock and generators of one execution.
pub(super) struct Values {
    clock: TurnClock,
    seed: [u8; 32],
    randoms: Keystream,
    guids: Keystream,
}

impl Values {
    /// The values of execution `execution_id` of `instance_id`.
    pub(super) fn new(instance_id: &str, execution_id: u64) -> Self {
        let seed = seed(instance_id, execution_id);
        Values {
            clock: TurnClock::default(),
            randoms: stream(&seed, Stream::Random),
            guids: stream(&seed, Stream::Guid),
            seed,
        }
    }

    /// The clock the guest's WASI clocks read.
    pub(super) fn clock(&self) -> TurnClock {
        self.clock.clone()
    }

    /// Set the time the guest sees to `at_ms`, when its turn began.
    pub(super) fn set_now(&self, at_ms: u64) {
        self.clock.set_ms(at_ms);
    }

    /// When the turn the guest is in began, in ms since the Unix epoch.
    pub(super) fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Fresh generators for the guest's WASI randomness, from their start.
    pub(super) fn wasi_random(&self) -> SeededRandom {
        let mut seed_bytes = [0u8; 16];
        stream(&self.seed, Stream::WasiInsecureSeed).fill(&mut seed_bytes);
        SeededRandom {
            secure: stream(&self.seed, Stream::WasiSecure),
            insecure: stream(&self.seed, Stream::WasiInsecure),
            insecure_seed: u128::from_le_bytes(seed_bytes),
        }
    }

    /// The next deterministic UUID (version 4), hyphenated, lower case.
    pub(super) fn new_guid(&mut self) -> String {
        let mut bytes = [0u8; 16];
        self.guids.fill(&mut bytes);
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .hyphenated()
            .to_string()
    }

    /// The next deterministic random number.
    pub(super) fn random_u64(&mut self) -> u64 {
        self.randoms.next_u64()
    }
}

/// The seed of execution `execution_id` of `instance_id`. The execution id
/// has a fixed length at the end, so no two executions hash the same bytes.
fn seed(instance_id: &str, execution_id: u64) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(SEED_TAG);
    hasher.update(instance_id.as_bytes());
    hasher.update(execution_id.to_le_bytes());
    hasher.finalize().into()
}

/// The ChaCha20 keystream `stream` keyed by `seed`, from its start.
fn stream(seed: &[u8; 32], stream: Stream) -> Keystream {
    Keystream::new(*seed, stream as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn guids_are_stable_per_execution_and_distinct() {
        let mut one = Values::new("i", 1);
        let mut two = Values::new("i", 1);
        let (a, b) = (one.new_guid(), one.new_guid());
        assert_ne!(a, b);
        assert_eq!(a, two.new_guid());
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4", "version 4 layout: {a}");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "variant: {a}");
        assert_ne!(a, Values::new("j", 1).new_guid());
        assert_ne!(a, Values::new("i", 2).new_guid());
    }

    #[test]
    fn each_kind_of_value_has_its_own_sequence() {
        let mut plain = Values::new("i", 1);
        let mut mixed = Values::new("i", 1);
        let guids = [plain.new_guid(), plain.new_guid()];
        mixed.random_u64();
        let first = mixed.new_guid();
        mixed.random_u64();
        assert_eq!([first, mixed.new_guid()], guids);
    }

    #[test]
    fn golden_seed() {
        assert_eq!(
            hex(&seed("golden", 1)),
            "56864586033c77e077273800b540d7c8dcc33860e4de710097591937aee74c91"
        );
    }

    #[test]
    fn golden_random_u64() {
        let mut values = Values::new("golden", 1);
        let drawn: Vec<u64> = (0..3).map(|_| values.random_u64()).collect();
        assert_eq!(
            drawn,
            [
                17_606_081_999_539_959_306,
                7_211_400_007_695_348_187,
                13_673_400_121_858_887_110
            ]
        );
    }

    #[test]
    fn golden_guids() {
        let mut values = Values::new("golden", 1);
        assert_eq!(values.new_guid(), "bdb424b0-e92f-4034-a2b4-304ddf83df65");
        assert_eq!(values.new_guid(), "af50efa6-733a-4777-8764-79655082c78a");
        assert_eq!(
            Values::new("golden", 2).new_guid(),
            "8f92ced3-40c2-4f19-af5c-266941ca3c18"
        );
    }

    #[test]
    fn golden_wasi_random() {
        let SeededRandom {
            mut secure,
            mut insecure,
            insecure_seed,
        } = Values::new("golden", 1).wasi_random();
        let mut bytes = [0u8; 16];
        secure.fill(&mut bytes);
        assert_eq!(hex(&bytes), "c00d89140dccb67cf74a362da9deb71a");
        // A read of a length that is no multiple of 4 leaves the next at
        // keystream byte 21.
        let mut odd = [0u8; 5];
        secure.fill(&mut odd);
        assert_eq!(hex(&odd), "bfc93c5fd7");
        secure.fill(&mut bytes);
        assert_eq!(hex(&bytes), "465cd5388ea35fd6a28d809205d64661");
        assert_eq!(secure.next_u64(), 12_685_524_673_004_075_703);
        insecure.fill(&mut bytes);
        assert_eq!(hex(&bytes), "954de6e6826cb80c7cc6baa1f1d337e9");
        assert_eq!(insecure.next_u64(), 9_686_227_505_953_455_983);
        assert_eq!(
            insecure_seed,
            222_037_406_573_723_631_730_287_268_080_379_690_241
        );
    }
}
