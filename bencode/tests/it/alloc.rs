//! Decoding allocates nothing in strict mode, and less than the input's
//! length in lenient mode, whatever the input.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bencode::Decoder;

/// Counts the bytes each thread allocates, so parallel tests do not mix.
struct Counting;

thread_local! {
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator unchanged; only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.with(|a| a.set(a.get() + layout.size()));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocated_by(f: impl FnOnce()) -> usize {
    let before = ALLOCATED.with(Cell::get);
    f();
    ALLOCATED.with(Cell::get) - before
}

/// Inputs shaped to make a tree-building decoder allocate the most per byte.
fn hostile_inputs() -> Vec<(&'static str, Vec<u8>)> {
    let n = 50_000;
    let many_dict_keys: Vec<u8> = [
        b"d".to_vec(),
        (0..n)
            .flat_map(|i| format!("{}:{i:08}le", 8).into_bytes())
            .collect(),
        b"e".to_vec(),
    ]
    .concat();
    vec![
        (
            "list of empty lists",
            [b"l".to_vec(), b"le".repeat(n), b"e".to_vec()].concat(),
        ),
        (
            "list of small ints",
            [b"l".to_vec(), b"i0e".repeat(n), b"e".to_vec()].concat(),
        ),
        ("dictionary of many keys", many_dict_keys),
        (
            "nested to the limit",
            [b"l".repeat(64), b"e".repeat(64)].concat(),
        ),
        ("huge declared length", b"9999999999999999:abc".to_vec()),
    ]
}

#[test]
fn strict_decoding_allocates_nothing() {
    for (name, input) in hostile_inputs() {
        let mut walked = 0;
        let bytes = allocated_by(|| {
            if let Ok(value) = Decoder::strict().decode(&input) {
                // Walking the tree allocates nothing either.
                walked =
                    value.as_list().map_or(0, |l| l.len()) + value.as_dict().map_or(0, |d| d.len());
            }
        });
        assert_eq!(bytes, 0, "{name}: walked {walked}");
    }
}

#[test]
fn lenient_decoding_allocates_less_than_the_input() {
    for (name, input) in hostile_inputs() {
        let bytes = allocated_by(|| {
            let _ = Decoder::lenient().decode(&input);
        });
        assert!(
            bytes < input.len(),
            "{name}: {bytes} bytes allocated for {} of input",
            input.len()
        );
    }
}
