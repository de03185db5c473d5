//! The deterministic values a guest sees: the turn clock, guids and random
//! numbers, each the same on every replay of the execution.

use sha2::{Digest, Sha256};

use crate::sandbox::TurnClock;

/// The clock and generators of one execution.
pub(super) struct Values {
    clock: TurnClock,
    seed: u64,
    guids: u64,
    randoms: u64,
}

impl Values {
    /// The values of execution `execution_id` of `instance_id`.
    pub(super) fn new(instance_id: &str, execution_id: u64) -> Self {
        Values {
            clock: TurnClock::default(),
            seed: seed(instance_id, execution_id),
            guids: 0,
            randoms: 0,
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

    /// Seed for the guest's WASI randomness.
    pub(super) fn random_seed(&self) -> u64 {
        self.seed.rotate_left(32)
    }

    /// A deterministic UUID (version 4 layout) from the execution's seed.
    pub(super) fn new_guid(&mut self) -> String {
        self.guids += 1;
        let hi = splitmix64(self.seed ^ self.guids.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let lo = splitmix64(hi ^ self.guids);
        let bytes =
            ((u128::from(hi) << 64) | u128::from(lo)) & !(0xF000u128 << 64) & !(0xC0u128 << 56);
        let bytes = bytes | (0x4000u128 << 64) | (0x80u128 << 56);
        let h = format!("{bytes:032x}");
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    /// A deterministic random number from the execution's seed.
    pub(super) fn random_u64(&mut self) -> u64 {
        self.randoms += 1;
        splitmix64(self.seed.rotate_left(13) ^ self.randoms.wrapping_mul(0xD1B5_4A32_D192_ED03))
    }
}

fn seed(instance_id: &str, execution_id: u64) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(instance_id.as_bytes());
    hasher.update(execution_id.to_le_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_stable_per_execution_and_distinct() {
        let mut one = Values::new("i", 1);
        let mut two = Values::new("i", 1);
        let (a, b) = (one.new_guid(), one.new_guid());
        assert_ne!(a, b);
        assert_eq!(a, two.new_guid());
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4", "version 4 layout: {a}");
        assert_ne!(a, Values::new("j", 1).new_guid());
        assert_ne!(a, Values::new("i", 2).new_guid());
    }
}
