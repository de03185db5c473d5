//! Why a guest stopped, in words: the reason an instance or an activity
//! attempt fails with, starting with its error code, and ending with the
//! tail of what the guest wrote to stderr.

use wasmtime::{Trap, WasmBacktrace};
use wasmtime_wasi::I32Exit;

use super::error_code::ErrorCode;
use super::fault::GuestFault;
use super::guest_output::OutputSink;

/// A readable reason for a guest that stopped with `error`, with the tail of
/// what it wrote to stderr (where a Rust panic message lands).
pub(super) fn describe_failure(error: &wasmtime::Error, output: &OutputSink) -> String {
    let mut reason = if let Some(fault) = error.downcast_ref::<GuestFault>() {
        fault.to_string()
    } else if let Some(exit) = error.downcast_ref::<I32Exit>() {
        describe_exit(exit.0)
    } else if let Some(trap) = error.downcast_ref::<Trap>() {
        describe_trap(*trap, fault_address(error), deep_recursion(error))
    } else {
        format!("the guest failed: {error}")
    };
    let tail = output.stderr_tail();
    if !tail.trim().is_empty() {
        reason.push_str("\nguest stderr:\n");
        reason.push_str(tail.trim_end());
    }
    reason
}

/// An exit with `status`, in words, after its code. WASI 0.2's `exit` passes only success
/// or failure, which wasmtime reports as 0 or 1: a guest that calls
/// `exit(3)` through a standard library built for it is seen to exit with 1.
fn describe_exit(status: i32) -> String {
    let code = ErrorCode::Exit;
    match status {
        0 => format!(
            "[{code}] the guest exited with status 0 (success) instead of returning a result"
        ),
        1 => format!(
            "[{code}] the guest exited with status 1 (a failure: WASI 0.2 reports every failing exit code as 1)"
        ),
        status => format!("[{code}] the guest exited with status {status}"),
    }
}

/// How far below 4 GiB an out-of-bounds access counts as the stack's end.
/// Rust (and C) guests for wasm32 place their stack first in linear memory,
/// growing down towards address 0: a frame pushed past it wraps around to an
/// address just under 4 GiB. A frame is seldom larger than this.
const STACK_WRAP_WINDOW: u64 = 1 << 20;

/// Frames of a backtrace that must all belong to at most two functions for
/// the call stack to count as deep recursion.
const RECURSION_FRAMES: usize = 16;

/// A trap, in words, after its code. `address` is the linear memory address a memory fault
/// hit, when known; `recursion` says whether the guest was deep in
/// recursion.
///
/// A guest that overflows the stack it keeps in linear memory traps with an
/// out-of-bounds access: at an address just below 4 GiB when a store hits
/// it, at no known address when a bulk operation (`memory.fill`, say, which
/// zeroes a local array) does. The first is told by the address, the second
/// by the recursion. A guest that exhausts the engine's own call stack
/// traps with [`Trap::StackOverflow`].
fn describe_trap(trap: Trap, address: Option<u64>, recursion: bool) -> String {
    const WRAP: u64 = 1 << 32;
    let what = match (trap, address) {
        (Trap::StackOverflow, _) => {
            format!("the guest trapped: {trap}: a stack overflow (deep recursion, probably)")
        }
        (Trap::MemoryOutOfBounds, Some(address))
            if (WRAP - STACK_WRAP_WINDOW..WRAP + STACK_WRAP_WINDOW).contains(&address) =>
        {
            format!(
                "the guest trapped: {trap} at address {address:#x}, just below 4 GiB, where a stack that starts at address 0 wraps around: probably a stack overflow (deep recursion or a large local)"
            )
        }
        (Trap::MemoryOutOfBounds, None) if recursion => format!(
            "the guest trapped: {trap} deep in recursion (a function calling itself over and over): probably a stack overflow"
        ),
        (trap, _) => format!("the guest trapped: {trap}"),
    };
    format!("[{}] {what}", ErrorCode::Trap)
}

/// The linear memory address of the memory fault behind `error`, if
/// wasmtime recorded one. wasmtime adds it to the trap as context, a value
/// of a type it does not export, so it is read from its text: "memory fault
/// at wasm address 0x... in linear memory of size 0x...".
fn fault_address(error: &wasmtime::Error) -> Option<u64> {
    const PREFIX: &str = "memory fault at wasm address 0x";
    error.chain().find_map(|cause| {
        let text = cause.to_string();
        let hex = text.strip_prefix(PREFIX)?;
        let end = hex
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(hex.len());
        u64::from_str_radix(&hex[..end], 16).ok()
    })
}

/// Whether the guest's backtrace in `error` shows deep recursion: its
/// innermost [`RECURSION_FRAMES`] frames belong to at most two functions.
fn deep_recursion(error: &wasmtime::Error) -> bool {
    let Some(backtrace) = error.downcast_ref::<WasmBacktrace>() else {
        return false;
    };
    let Some(frames) = backtrace.frames().get(..RECURSION_FRAMES) else {
        return false;
    };
    repeats(frames.iter().map(|f| f.func_index()))
}

/// Whether `functions` (a call stack's frames, innermost first) hold at
/// most two distinct functions.
fn repeats(functions: impl Iterator<Item = u32>) -> bool {
    let mut seen: Vec<u32> = Vec::with_capacity(3);
    for function in functions {
        if !seen.contains(&function) {
            seen.push(function);
            if seen.len() > 2 {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_just_below_4_gib_is_called_a_stack_overflow() {
        let text = describe_trap(Trap::MemoryOutOfBounds, Some(0xffff_fff0), false);
        assert!(text.contains("probably a stack overflow"), "{text}");
        assert!(text.contains("0xfffffff0"), "{text}");
    }

    #[test]
    fn other_out_of_bounds_accesses_are_reported_as_such() {
        for (address, recursion) in [
            (None, false),
            (Some(0x10_0000), false),
            (Some(0xfe00_0000), false),
            // The address decides when it is known.
            (Some(0x10_0000), true),
        ] {
            let text = describe_trap(Trap::MemoryOutOfBounds, address, recursion);
            assert!(text.contains("out of bounds memory access"), "{text}");
            assert!(!text.contains("stack"), "{text}");
        }
    }

    #[test]
    fn a_wasm_stack_overflow_is_named() {
        let text = describe_trap(Trap::StackOverflow, None, false);
        assert!(text.contains("stack overflow"), "{text}");
    }

    #[test]
    fn a_trap_starts_with_its_code() {
        let text = describe_trap(Trap::UnreachableCodeReached, None, false);
        assert!(text.starts_with("[DX008] the guest trapped: "), "{text}");
        let text = describe_failure(
            &wasmtime::Error::from(Trap::StackOverflow),
            &OutputSink::new("t", Default::default(), Default::default()),
        );
        assert!(text.starts_with("[DX008] "), "{text}");
    }

    #[test]
    fn an_out_of_bounds_access_of_unknown_address_in_recursion_is_a_stack_overflow() {
        let text = describe_trap(Trap::MemoryOutOfBounds, None, true);
        assert!(text.contains("probably a stack overflow"), "{text}");
    }

    #[test]
    fn recursion_is_a_stack_of_at_most_two_functions() {
        assert!(repeats([7, 7, 7, 7].into_iter()));
        assert!(repeats([7, 8, 7, 8].into_iter()));
        assert!(!repeats([7, 8, 9, 7].into_iter()));
    }

    #[test]
    fn the_fault_address_is_read_from_the_error_chain() {
        let error = wasmtime::Error::from(Trap::MemoryOutOfBounds)
            .context("memory fault at wasm address 0xfffffff8 in linear memory of size 0x110000");
        assert_eq!(fault_address(&error), Some(0xffff_fff8));
        assert_eq!(
            fault_address(&wasmtime::Error::from(Trap::MemoryOutOfBounds)),
            None
        );
    }

    #[test]
    fn an_exit_status_is_named() {
        let output = OutputSink::new("t", Default::default(), Default::default());
        let error =
            wasmtime::Error::from(I32Exit(3)).context("error while executing at wasm backtrace");
        assert_eq!(
            describe_failure(&error, &output),
            "[DX009] the guest exited with status 3"
        );
        let text = describe_failure(&wasmtime::Error::from(I32Exit(1)), &output);
        assert!(
            text.starts_with("[DX009] the guest exited with status 1 (a failure"),
            "{text}"
        );
        let text = describe_failure(&wasmtime::Error::from(I32Exit(0)), &output);
        assert!(
            text.starts_with("[DX009] the guest exited with status 0"),
            "{text}"
        );
    }
}
