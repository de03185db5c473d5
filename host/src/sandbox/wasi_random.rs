//! `wasi:random` for orchestrations, answered from generators the host seeds
//! from the execution. Bytes are read straight from each generator's
//! output, so what a guest draws depends on the generators alone, not on how
//! a WASI implementation samples them (wasmtime-wasi's own host draws one
//! 32-bit word per byte through `rand`'s distributions, a choice a new
//! release may change).

use wasmtime::component::HasData;
use wasmtime_wasi::p2::bindings::random::{insecure, insecure_seed, random};
use wasmtime_wasi::random::DEFAULT_MAX_SIZE;

use super::fault::GuestFault;
use super::keystream::Keystream;

/// The generators behind an orchestration's WASI randomness. The host
/// derives them from the execution, so every replay draws the same values.
pub(crate) struct SeededRandom {
    /// Answers `wasi:random/random`.
    pub(crate) secure: Keystream,
    /// Answers `wasi:random/insecure`.
    pub(crate) insecure: Keystream,
    /// Answers `wasi:random/insecure-seed`, low 64 bits first.
    pub(crate) insecure_seed: u128,
}

/// The `wasi:random` interfaces of one orchestration guest; `None` for a
/// store without seeded randomness (an activity's, which never links them).
pub(crate) struct RandomView<'a>(pub(crate) Option<&'a mut SeededRandom>);

/// Links the `wasi:random` interfaces to a [`RandomView`].
pub(crate) struct DeterministicRandom;

impl HasData for DeterministicRandom {
    type Data<'a> = RandomView<'a>;
}

impl RandomView<'_> {
    fn generators(&mut self) -> wasmtime::Result<&mut SeededRandom> {
        self.0
            .as_deref_mut()
            .ok_or_else(|| GuestFault::NoContext.into())
    }
}

/// The next `len` bytes of `stream`. A guest may ask for no more than
/// WASI's usual limit.
fn bytes(stream: &mut Keystream, len: u64) -> wasmtime::Result<Vec<u8>> {
    if len > DEFAULT_MAX_SIZE {
        wasmtime::bail!("requested {len} random bytes, more than the limit of {DEFAULT_MAX_SIZE}");
    }
    let mut out = vec![0u8; usize::try_from(len)?];
    stream.fill(&mut out);
    Ok(out)
}

impl random::Host for RandomView<'_> {
    fn get_random_bytes(&mut self, len: u64) -> wasmtime::Result<Vec<u8>> {
        bytes(&mut self.generators()?.secure, len)
    }

    fn get_random_u64(&mut self) -> wasmtime::Result<u64> {
        Ok(self.generators()?.secure.next_u64())
    }
}

impl insecure::Host for RandomView<'_> {
    fn get_insecure_random_bytes(&mut self, len: u64) -> wasmtime::Result<Vec<u8>> {
        bytes(&mut self.generators()?.insecure, len)
    }

    fn get_insecure_random_u64(&mut self) -> wasmtime::Result<u64> {
        Ok(self.generators()?.insecure.next_u64())
    }
}

impl insecure_seed::Host for RandomView<'_> {
    fn insecure_seed(&mut self) -> wasmtime::Result<(u64, u64)> {
        let seed = self.generators()?.insecure_seed;
        // Truncations meant: the seed's low and high halves.
        Ok((seed as u64, (seed >> 64) as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeded() -> SeededRandom {
        SeededRandom {
            secure: Keystream::new([7; 32], 1),
            insecure: Keystream::new([7; 32], 2),
            insecure_seed: (7 << 64) | 9,
        }
    }

    #[test]
    fn bytes_and_numbers_are_the_streams_in_order() -> wasmtime::Result<()> {
        let mut random = seeded();
        let mut view = RandomView(Some(&mut random));
        let (mut secure, mut insecure) = (Keystream::new([7; 32], 1), Keystream::new([7; 32], 2));
        let mut expected = [0u8; 5];
        secure.fill(&mut expected);
        assert_eq!(random::Host::get_random_bytes(&mut view, 5)?, expected);
        assert_eq!(random::Host::get_random_u64(&mut view)?, secure.next_u64());
        insecure.fill(&mut expected);
        assert_eq!(
            insecure::Host::get_insecure_random_bytes(&mut view, 5)?,
            expected
        );
        assert_eq!(
            insecure::Host::get_insecure_random_u64(&mut view)?,
            insecure.next_u64()
        );
        assert_eq!(insecure_seed::Host::insecure_seed(&mut view)?, (9, 7));
        Ok(())
    }

    #[test]
    fn a_huge_request_traps_and_a_view_without_generators_is_refused() {
        let mut random = seeded();
        let mut view = RandomView(Some(&mut random));
        assert!(random::Host::get_random_bytes(&mut view, DEFAULT_MAX_SIZE + 1).is_err());
        let mut none = RandomView(None);
        assert!(random::Host::get_random_u64(&mut none).is_err());
    }
}
